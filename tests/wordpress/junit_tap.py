#!/usr/bin/env python3
"""Prints one "ok - " / "not ok - " line per test case of a JUnit XML report (PHPUnit's
--log-junit), so that the suite counts PHPUnit's results with everything else. A report
with no test case counts as a failure: a suite that ran nothing must not pass."""
import sys
import xml.etree.ElementTree as ET

cases = list(ET.parse(sys.argv[1]).getroot().iter("testcase"))
if not cases:
    print("not ok - PHPUnit ran at least one test")
for case in cases:
    name = f"phpunit: {case.get('class', '')}::{case.get('name')}"
    bad = case.find("failure") is not None or case.find("error") is not None
    skipped = case.find("skipped") is not None
    # A skipped test proves nothing: count it as a failure.
    print(("not ok - " if bad or skipped else "ok - ") + name + (" (skipped)" if skipped else ""))
