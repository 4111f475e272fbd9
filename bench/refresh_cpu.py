#!/usr/bin/env python3
"""What one refresh costs the fetch thread in CPU.

A PHP CLI process calls ssm_db_config_refresh() every --spacing seconds, and
reads its fetch thread's CPU time (/proc/self/task/*/schedstat) before and
after: the spacing lets the thread's code and data go cold, as between the
refreshes of a php-fpm host (at the default TTL of 60 s, about one a minute).
Prints the median CPU per refresh, and the share of one CPU that refreshing
takes at one refresh per TTL.

With --iam a second process, at the same time, refreshes an `auth=iam` value
(the fetch and the signing of its IAM token): its median against the
password value's, in the same run, is what signing adds to a refresh.

Run after scripts/setup:
    .venv/bin/python bench/refresh_cpu.py [--spacing 5 --refreshes 12 --ttl 60] [--iam]
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from stack import AwsStack  # noqa: E402

SO = os.environ.get("SSM_DB_CONFIG_SO", os.path.join(ROOT, "target/release/libssm_db_config.so"))

# The fetch thread is named ssm_db_config; its first schedstat field is the
# nanoseconds it has run. It keeps running between refreshes (TTL 60 s).
SCRIPT = """
$thread_ns = function () {
    foreach (glob('/proc/self/task/*') as $task) {
        if (trim(@file_get_contents("$task/comm")) === 'ssm_db_config') {
            return (int) explode(' ', file_get_contents("$task/schedstat"))[0];
        }
    }
    return 0;
};
ssm_db_config();
$ms = [];
for ($i = 0; $i < %(refreshes)d; $i++) {
    usleep(%(spacing_us)d);
    $before = $thread_ns();
    ssm_db_config_refresh();
    $ms[] = ($thread_ns() - $before) / 1e6;
}
$s = ssm_db_config_status();
echo json_encode(['ms' => $ms, 'requests' => $s['ssm_requests']]);
"""


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spacing", type=float, default=5.0, help="seconds between refreshes (default 5)")
    ap.add_argument("--refreshes", type=int, default=12, help="refreshes per process (default 12)")
    ap.add_argument("--ttl", type=float, default=60.0, help="seconds between refreshes on a host (default 60)")
    ap.add_argument("--iam", action="store_true",
                    help="also refresh an auth=iam value in a second process, and compare")
    args = ap.parse_args()
    code = SCRIPT % {"refreshes": args.refreshes, "spacing_us": int(args.spacing * 1e6)}
    values = {"/bench/db": "postgresql://wp:bench-password@db.internal:5432/wp"}
    if args.iam:
        values["/bench/db-iam"] = "postgresql://wp_iam@db.internal:5432/wp?auth=iam&sslmode=require"
    with AwsStack() as aws:
        for name, value in values.items():
            aws.client("ssm").put_parameter(Name=name, Type="SecureString", Value=value)
        env = dict(os.environ, **aws.env())
        env.pop("PHP_INI_SCAN_DIR", None)
        procs = {name: subprocess.Popen(
            ["php", "-n", "-d", f"extension={SO}", "-d", f"ssm_db_config.parameter={name}",
             "-d", "ssm_db_config.shared_dir=off", "-r", code],
            env=env, stdout=subprocess.PIPE, text=True) for name in values}
        results = {name: json.loads(proc.communicate()[0]) for name, proc in procs.items()}
    print(f"== fetch thread CPU per refresh, PHP CLI, one refresh every {args.spacing:g} s, {args.refreshes} refreshes")
    medians = {}
    for name, result in results.items():
        ms = medians[name] = median(result["ms"])
        label = "auth=iam " if name.endswith("-iam") else "password "
        print(f"{label} median {ms:6.2f} ms  ({', '.join(f'{x:.1f}' for x in result['ms'])}; SSM requests: {result['requests']})")
        print(f"{label} one refresh per {args.ttl:g} s: {ms / 1000 / args.ttl * 100:.5f} % of one CPU")
    if args.iam:
        print(f"auth=iam / password: {medians['/bench/db-iam'] / medians['/bench/db']:.2f}")


if __name__ == "__main__":
    main()
