#!/usr/bin/env python3
"""Instructions per request of a php-fpm worker, page by page: what wrk cannot see.

fleet.py's throughput ratios move by 2 to 4 % from one round to the next on
a shared machine, more than the extension can cost. Instructions do not: this
counts them (valgrind's callgrind) in one php-fpm worker serving the pages
fleet.py loads, through nginx, and prints each page's count against page (a)'s,
measured in the same run.

How a count is taken: php-fpm with one worker runs under callgrind, which
writes the worker's counts (per thread) each time a request starts
(`--dump-before=php_request_startup`), so that each dump holds one whole
request cycle. The first WARM requests (compiling, the first fetch) are left
out and the median of the next N is the page's figure: the counts of warm
requests differ by at most about a hundred instructions (most by none), so
a difference of tens between medians is real.

The workers of a host are of two kinds, and page (k) is counted in both:
- the worker that fetches (the host's refresher): it has had a fetch thread,
  and glibc then wraps every cancellable system call (read, write, accept,
  poll...) in cancellation bookkeeping for the rest of the process's life;
- every other worker, which takes the value from the host's shared entry
  and never starts a thread. To count one, the first worker fetches and is
  killed; the one php-fpm starts in its place is counted.

Page (m) is page (k) with ssm_db_config.define_constants = 1: the worker
keeps the constants across its requests, and the call finds them defined.

Refreshes are not in these counts (TTL of an hour): what they cost is
fleet.py's (b) against (g) and refresh_cpu.py's.

Run after scripts/setup (and `apt install valgrind nginx-light`, listed in
.ci/apt-bench.txt); about two minutes:
    .venv/bin/python bench/instructions.py [--requests 1000]
"""
import argparse
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import fleet  # noqa: E402
from stack import AwsStack, free_port  # noqa: E402

WARM = 300

# (label, page, extension settings or None, kind of worker)
CASES = {
    "a": ("(a) constants hard-coded, no extension", fleet.PAGE_HARDCODED, None, None),
    "c": ("(c) as (a), extension loaded, never called", fleet.PAGE_HARDCODED, "loaded", None),
    "k": ("(k) ssm_db_config_define(), a worker that adopts", fleet.PAGE_DEFINE, "calls", "adopts"),
    "k*": ("(k) ssm_db_config_define(), the worker that fetched", fleet.PAGE_DEFINE, "calls", "fetched"),
    "b": ("(b) foreach ssm_db_config(), a worker that adopts", fleet.PAGE_EXTENSION, "calls", "adopts"),
    "d": ("(d) the loop over a literal array, no extension", fleet.PAGE_LOOP_LITERAL, None, None),
    "m": ("(m) as (k), define_constants on", fleet.PAGE_DEFINE, "defines", "adopts"),
}


def settings(mode, shared_root):
    if mode is None:
        return {}
    ini = {"extension": fleet.SO, "ssm_db_config.parameter": "/bench/db"}
    if mode in ("calls", "defines"):
        shared = tempfile.mkdtemp(dir=shared_root)
        os.chmod(shared, 0o700)
        if fleet.AS_ROOT:
            import pwd
            os.chown(shared, pwd.getpwnam("nobody").pw_uid, -1)
        ini.update({"ssm_db_config.ttl": "3600", "ssm_db_config.shared_dir": shared})
    if mode == "defines":
        ini["ssm_db_config.define_constants"] = "1"
    return ini


def worker_of(master_pid, not_pid=None, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = [p for p in fleet.children(master_pid) if p != not_pid]
        if pids:
            time.sleep(0.3)  # past fork, into the accept loop
            return pids[0]
        time.sleep(0.1)
    raise RuntimeError("php-fpm started no worker")


def count(work, shared_root, env, key, requests):
    """Instructions of the worker's main thread in each request after WARM."""
    _, page, mode, kind = CASES[key]
    tag = key.replace("*", "x")
    script = f"{tag}.php"
    with open(os.path.join(work, script), "w") as f:
        f.write(page)
    port, web = free_port(), free_port()
    conf = os.path.join(work, f"{tag}.conf")
    with open(conf, "w") as f:
        f.write(f"[global]\nerror_log = {work}/{tag}-fpm.log\ndaemonize = no\npid = {work}/{tag}.pid\n"
                f"[pool]\nlisten = 127.0.0.1:{port}\npm = static\npm.max_children = 1\n")
    out = os.path.join(work, f"cg-{tag}")
    # A dump before each request: each holds one whole cycle of the worker
    # (the previous request's end, waiting, reading the next one).
    args = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--dump-instr=no",
            "--dump-before=php_request_startup", f"--callgrind-out-file={out}.%p",
            fleet.FPM, "-F", "-y", conf, "-p", work]
    for k, v in settings(mode, shared_root).items():
        args += ["-d", f"{k}={v}"]
    fpm = subprocess.Popen(args, env=env, preexec_fn=fleet.demote, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    nginx = None
    try:
        fleet.wait_port(port, timeout=120)
        worker = worker_of(fpm.pid)
        nginx = fleet.start_nginx(work, [(web, port, script)])
        conn = http.client.HTTPConnection("127.0.0.1", web, timeout=120)

        def get():
            conn.request("GET", "/")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200 or not body.startswith(b"db.internal"):
                raise RuntimeError(f"{key}: HTTP {response.status}: {body[:200]!r}")

        if kind == "adopts":
            # The first worker fetches (and so has a thread); the one
            # php-fpm starts in its place takes the value from the shared entry.
            get()
            os.kill(worker, signal.SIGKILL)
            worker = worker_of(fpm.pid, not_pid=worker)
        for _ in range(WARM + requests + 1):
            get()
        conn.close()
    finally:
        if nginx:
            fleet.stop(nginx)
        fleet.stop(fpm)
    cycles = {}
    for name in os.listdir(work):
        m = re.match(rf"cg-{re.escape(tag)}\.{worker}\.(\d+)-01$", name)
        if m:
            with open(os.path.join(work, name)) as f:
                cycles[int(m.group(1))] = int(re.search(r"^(?:summary|totals): (\d+)", f.read(), re.M).group(1))
    # Dump n is taken as request n starts, so it holds request n - 1.
    measured = [cycles[n] for n in range(WARM + 2, WARM + requests + 2) if n in cycles]
    if len(measured) != requests:
        raise RuntimeError(f"{key}: callgrind wrote counts for {len(measured)} of {requests} requests")
    return measured


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="measured requests per page (default 1000)")
    ap.add_argument("--cases", default="a,c,k,k*,m,b,d", help="which pages, comma-separated (default all)")
    args = ap.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("instructions.py: valgrind is not installed (apt install valgrind)")
    keys = args.cases.split(",")
    if keys[0] != "a":
        keys.insert(0, "a")
    work = tempfile.mkdtemp(prefix="ssm-instr-")
    shared_root = tempfile.mkdtemp(prefix="ssm-instr-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(shared_root, 0o711)
    os.chmod(work, 0o777)
    per_request, spread = {}, {}
    try:
        with AwsStack() as aws:
            env = fleet.bench_env(aws)
            for key in keys:
                fleet.progress(f"{key}: {WARM} + {args.requests} requests under callgrind")
                counts = count(work, shared_root, env, key, args.requests)
                per_request[key] = statistics.median(counts)
                spread[key] = (min(counts), max(counts))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shared_root, ignore_errors=True)
    base = per_request["a"]
    print(f"== instructions per request, one php-fpm worker's main thread (callgrind; median of {args.requests} "
          f"requests after {WARM}, through nginx; TTL 3600 s)")
    print(f"{'':52} {'median':>8} {'vs (a)':>7} {'ratio':>7} {'min':>8} {'max':>8}")
    for key in keys:
        n = per_request[key]
        low, high = spread[key]
        print(f"{CASES[key][0]:52} {n:8.0f} {n - base:+7.0f} {n / base:7.4f} {low:8d} {high:8d}")


if __name__ == "__main__":
    main()
