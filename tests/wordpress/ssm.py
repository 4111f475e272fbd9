#!/usr/bin/env python3
"""Small commands on the test stack (tests/support/stack.py) for the shell suites.

    ssm.py put NAME            value from $SSM_VALUE (so no secret is on a command line)
    ssm.py delete NAME
    ssm.py count               GetParameter requests the counting proxy has seen
    ssm.py fault MODE [MS] [FOR_MS]  make the proxy misbehave (none, hang, refuse, throttle, ...),
                               with a delay of MS, for FOR_MS (then it ends by itself)
    ssm.py faulted             requests the proxy's faults answered or broke
    ssm.py recent              the proxy's last requests, one a line: unix time, target, fault
Talks to moto directly (MOTO_URL), so these calls are not counted by the proxy.
"""
import json
import os
import sys
import urllib.request

import boto3


def ssm():
    return boto3.client("ssm", endpoint_url=os.environ["MOTO_URL"], region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def main(argv):
    cmd = argv[1]
    if cmd == "put":
        ssm().put_parameter(Name=argv[2], Value=os.environ["SSM_VALUE"], Type="SecureString", Overwrite=True)
    elif cmd == "delete":
        ssm().delete_parameter(Name=argv[2])
    elif cmd == "count":
        with urllib.request.urlopen(os.environ["PROXY_URL"] + "/__proxy/counts", timeout=5) as r:
            counts = json.load(r)
        print(counts["by_target"].get("AmazonSSM.GetParameter", 0))
    elif cmd == "faulted":
        with urllib.request.urlopen(os.environ["PROXY_URL"] + "/__proxy/counts", timeout=5) as r:
            print(json.load(r)["faulted"])
    elif cmd == "recent":
        with urllib.request.urlopen(os.environ["PROXY_URL"] + "/__proxy/counts", timeout=5) as r:
            for when, target, mode in json.load(r)["recent"]:
                print(f"{when:.3f} {target} {mode}")
    elif cmd == "fault":
        fault = {"mode": argv[2], "delay_ms": int(argv[3]) if len(argv) > 3 else 30000}
        if len(argv) > 4:
            fault["for_ms"] = int(argv[4])
        body = json.dumps(fault).encode()
        urllib.request.urlopen(urllib.request.Request(os.environ["PROXY_URL"] + "/__proxy/fault", data=body,
                                                      method="POST"), timeout=5).read()
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
