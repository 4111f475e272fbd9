#!/usr/bin/env python3
"""Fleet benchmark: what ssm_db_config() costs a php-fpm host under load.

- php-fpm (8 static workers) behind nginx, driven by wrk: (a) a page that
  defines the DB_* constants hard-coded, as wp-config.php does today, from a
  pool without the extension; (b) a page that defines them from
  ssm_db_config() with ssm_db_config.ttl = 5, from a pool with the extension
  and the shared cache. Throughput, p50 and p99 latency and their ratios, and
  the GetParameter requests that reached the emulator during (b); (k) the
  one-call form README.md gives for wp-config.php, ssm_db_config_define(),
  same settings as (b); (m) page (k) with ssm_db_config.define_constants = 1,
  the setup README.md recommends for a WordPress pool.
- Private memory (Private_Dirty, /proc/PID/smaps_rollup) per worker of each
  pool after the load, and the difference.
- A soak: one PHP process, one million calls and ten thousand refreshes, RSS
  before and after.

Run after scripts/setup (and `apt install wrk`, listed in .ci/apt-bench.txt):
    .venv/bin/python bench/fleet.py [--duration 60]
"""
import argparse
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from stack import AwsStack, free_port  # noqa: E402

SO = os.environ.get("SSM_DB_CONFIG_SO", os.path.join(ROOT, "target/release/libssm_db_config.so"))
FPM = shutil.which("php-fpm8.2") or "/usr/sbin/php-fpm8.2"
AS_ROOT = os.geteuid() == 0
PAGE_HARDCODED = """<?php
define('DB_HOST', 'db.internal:5432'); define('DB_PORT', 5432); define('DB_USER', 'wp');
define('DB_PASSWORD', 'bench-password'); define('DB_NAME', 'wp'); define('DB_ENGINE', 'postgresql');
echo DB_HOST;
"""
PAGE_EXTENSION = """<?php
foreach (ssm_db_config() as $name => $value) { define($name, $value); }
echo DB_HOST;
"""
# --decompose: (d) page (b)'s loop over a literal array, without the
# extension: what the wp-config.php idiom costs by itself; (f) the call, its
# result unused, then page (a): what calling costs without reading the array.
PAGE_LOOP_LITERAL = """<?php
foreach (['DB_HOST' => 'db.internal:5432', 'DB_PORT' => 5432, 'DB_USER' => 'wp', 'DB_PASSWORD' => 'bench-password',
          'DB_NAME' => 'wp', 'DB_ENGINE' => 'postgresql'] as $name => $value) { define($name, $value); }
echo DB_HOST;
"""
PAGE_CALL_ONLY = PAGE_HARDCODED.replace("<?php", "<?php\nssm_db_config();", 1)
# (k) the one-call form of page (b), which README.md gives for wp-config.php:
# the extension defines the constants itself.
PAGE_DEFINE = """<?php
ssm_db_config_define();
echo DB_HOST;
"""
PAGES = {"a": ("hardcoded.php", PAGE_HARDCODED), "b": ("extension.php", PAGE_EXTENSION), "c": ("hardcoded.php", PAGE_HARDCODED),
         "d": ("loop.php", PAGE_LOOP_LITERAL),
         "f": ("call.php", PAGE_CALL_ONLY), "g": ("extension.php", PAGE_EXTENSION),
         **{k: ("extension.php", PAGE_EXTENSION) for k in "hij"}, "k": ("define.php", PAGE_DEFINE),
         "l": ("define.php", PAGE_DEFINE), "m": ("define.php", PAGE_DEFINE)}
LABELS = {"a": "(a) constants hard-coded", "b": "(b) ssm_db_config(), TTL {ttl} s", "c": "(c) constants, extension loaded",
          "d": "(d) loop over a literal array",
          "f": "(f) call unused, then as (a)", "g": "(g) as (b), TTL 3600 s",
          **{k: f"({k}) as (b), --other-so {n + 1}" for n, k in enumerate("hij")},
          "k": "(k) ssm_db_config_define(), TTL {ttl} s", "l": "(l) as (k), TTL 3600 s",
          "m": "(m) as (k), define_constants on"}
# (m) is page (k) with ssm_db_config.define_constants: each worker defines the
# constants once and keeps them across its requests (replaced in place when
# the value changes), and the call finds them defined.
# (g) and (l) never refresh during a run: (b) against (g), (k) against (l),
# is what refreshing costs.
LONG_TTL = 3600


def ttl_of(key, ttl):
    """The TTL of a pool that calls the extension, else None."""
    return LONG_TTL if key in "gl" else ttl if key in "befhijkm" else None


# With two CPUs or more, wrk (and the AWS emulator) get CPU 0 and the servers
# (nginx, php-fpm) the others, so that neither the load generator nor the
# stand-in for SSM takes time from one pool more than from another. Set by
# main() (--no-pin turns it off).
LOAD_CPUS = None
SERVER_CPUS = None
# --other-so: the builds of the extension that pools (h), (i), (j) load.
OTHER_SO = {}


def bench_env(aws):
    """Puts the benchmark's parameter in the emulator; the environment that
    sends a PHP process to it (through the counting proxy)."""
    aws.client("ssm").put_parameter(Name="/bench/db", Type="SecureString",
                                    Value="postgresql://wp:bench-password@db.internal:5432/wp")
    env = dict(os.environ, **aws.env())
    env.pop("PHP_INI_SCAN_DIR", None)
    return env


def place(cpus):
    if cpus:
        os.sched_setaffinity(0, cpus)


def demote():
    place(SERVER_CPUS)
    if AS_ROOT:
        user = pwd.getpwnam("nobody")
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)


def start_fpm(work, name, port, ini, env):
    conf = os.path.join(work, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(f"""[global]
error_log = {work}/{name}-fpm.log
daemonize = no
pid = {work}/{name}.pid
[{name}]
listen = 127.0.0.1:{port}
pm = static
pm.max_children = 8
""")
    args = [FPM, "-F", "-y", conf, "-p", work]
    for k, v in ini.items():
        args += ["-d", f"{k}={v}"]
    proc = subprocess.Popen(args, env=env, preexec_fn=demote, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port)
    return proc


def wait_port(port, timeout=15):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def start_nginx(work, routes):
    servers = "".join(f"""
    server {{
        listen 127.0.0.1:{listen};
        root {work};
        location / {{
            fastcgi_pass 127.0.0.1:{fpm};
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME {work}/{script};
        }}
    }}""" for listen, fpm, script in routes)
    conf = os.path.join(work, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""{"user nobody nogroup;" if AS_ROOT else ""}
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/nginx-body;
    fastcgi_temp_path {work}/nginx-fastcgi;
    proxy_temp_path {work}/nginx-proxy;
    uwsgi_temp_path {work}/nginx-uwsgi;
    scgi_temp_path {work}/nginx-scgi;
    keepalive_requests 100000;
{servers}
}}
""")
    proc = subprocess.Popen(["nginx", "-c", conf, "-p", work], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: place(SERVER_CPUS))
    for listen, _, _ in routes:
        wait_port(listen)
    return proc


def progress(message):
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wrk(port, seconds):
    progress(f"wrk on :{port} for {seconds} s")
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{seconds}s", "--latency", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True, preexec_fn=lambda: place(LOAD_CPUS)).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": pct(50), "p99_ms": pct(99), "errors": int(non2xx.group(1)) if non2xx else 0}


def median(values):
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def merge(results):
    """Over rounds of equal length: mean throughput (total requests / total
    time), and the median round's percentiles (one round that a neighbour's
    burst of CPU hit does not decide the figure; every round is printed)."""
    return {"rps": sum(r["rps"] for r in results) / len(results),
            "p50_ms": median(r["p50_ms"] for r in results), "p99_ms": median(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results)}


# Two-sided 95 % quantiles of Student's t, by degrees of freedom.
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23,
       11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11, 18: 2.10, 19: 2.09}


def paired(num, den, key):
    """The per-round ratios num/den of `key` (each round's two pools ran on
    the same machine minutes apart), their mean and a 95 % interval. The
    machine's drift between rounds is as large as the effect measured, so a
    ratio is worth as much as its interval."""
    ratios = [n[key] / d[key] for n, d in zip(num, den)]
    mean = sum(ratios) / len(ratios)
    if len(ratios) < 2:
        return mean, float("nan"), float("nan")
    sd = (sum((r - mean) ** 2 for r in ratios) / (len(ratios) - 1)) ** 0.5
    half = T95.get(len(ratios) - 1, 2.0) * sd / len(ratios) ** 0.5
    return mean, mean - half, mean + half


def children(ppid):
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if int(fields[1]) == ppid:
                    pids.append(int(entry))
            except OSError:
                pass
    return pids


def fetch_thread_ns(master_pid):
    """CPU time of the extension's fetch threads (named ssm_db_config) in the
    workers of one pool, by thread: what refreshing costs the CPUs that serve."""
    ns = {}
    for pid in children(master_pid):
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() != "ssm_db_config":
                        continue
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    ns[tid] = int(f.read().split()[0])
        except OSError:
            pass  # the thread (or worker) ended while we looked
    return ns


def start_pools(work, shared_root, round_no, ports, ttl, env):
    """(a) and (d) without the extension; (b), (f) and the --other-so builds
    (h), (i), (j) with it, TTL `ttl`, and (g) with a TTL of an hour, a fresh
    shared directory each; (c) with it loaded and never called, for the
    memory figures."""
    def ini(key):
        if key == "c":
            return {"extension": SO, "ssm_db_config.parameter": "/bench/db"}
        if ttl_of(key, ttl) is None:
            return {}
        shared = os.path.join(shared_root, f"shared-{key}-{round_no}")
        os.mkdir(shared, 0o700)
        if AS_ROOT:
            os.chown(shared, pwd.getpwnam("nobody").pw_uid, -1)
        return {"extension": OTHER_SO.get(key, SO), "ssm_db_config.parameter": "/bench/db",
                "ssm_db_config.ttl": str(ttl_of(key, ttl)), "ssm_db_config.shared_dir": shared,
                "ssm_db_config.define_constants": "1" if key == "m" else "0"}
    return {key: start_fpm(work, f"pool-{key}", port, ini(key), env) for key, port in ports.items()}


def stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def private_dirty_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return int(re.search(r"^Private_Dirty:\s+(\d+) kB", f.read(), re.M).group(1))


def soak(env, moto_url, calls=1_000_000, refreshes=10_000, checkpoints=5, warmup_calls=30_000):
    """RSS before and after; also at `checkpoints` points along the way, so
    that a leak (steady growth) can be told from the allocator settling.

    The loop runs once, short, before the first reading: the first time PHP
    runs a piece of code, the pages of php8.2 that hold it are mapped into
    the process and count in its RSS (RssFile). Without that warm-up pass the
    harness's own first run showed as 192 kB of growth, half the 1 % target,
    in a run that called nothing of the extension. RssAnon, the process's
    own memory, is printed beside VmRSS: a leak grows it.

    Straight to moto (`moto_url`): the counting proxy would be the
    bottleneck of 10,000 fetches."""
    warmup_refreshes = warmup_calls * refreshes // calls
    code = f"""
    $rss = function () {{
        $kb = [];
        foreach (file('/proc/self/status') as $l) {{
            if (preg_match('/^(VmRSS|RssAnon):\\s+(\\d+)/', $l, $m)) {{ $kb[$m[1]] = (int) $m[2]; }}
        }}
        return $kb;
    }};
    $run = function ($calls, $refreshes, $checkpoints) use ($rss) {{
        $every = intdiv($calls, $refreshes);
        $checkpoint = intdiv($calls, $checkpoints);
        $along = [];
        for ($i = 1; $i <= $calls; $i++) {{
            ssm_db_config();
            if ($i % $every === 0) {{ ssm_db_config_refresh(); }}
            if ($i % $checkpoint === 0) {{ $along[] = $rss(); }}
        }}
        return $along;
    }};
    ssm_db_config();
    $run({warmup_calls}, {warmup_refreshes}, {checkpoints});
    $before = $rss();
    $along = $run({calls}, {refreshes}, {checkpoints});
    $s = ssm_db_config_status();
    echo json_encode(["before" => $before, "after" => $rss(), "along" => $along, "fetches" => $s["fetches"], "hits" => $s["hits"]]);
    """
    out = subprocess.run(["php", "-d", f"extension={SO}", "-d", "ssm_db_config.parameter=/bench/db", "-r", code],
                         env=dict(env, AWS_ENDPOINT_URL=moto_url), capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out), calls=calls, refreshes=refreshes, checkpoints=checkpoints,
                warmup_calls=warmup_calls, warmup_refreshes=warmup_refreshes)


def print_soak(s):
    growth = {k: (s["after"][k] - s["before"][k]) / s["before"][k] * 100 for k in ("VmRSS", "RssAnon")}
    print(f"== soak: one process, {s['calls']:,} calls and {s['refreshes']:,} refreshes ({s['fetches']} fetches, "
          f"after a warm-up pass of {s['warmup_calls']:,} calls and {s['warmup_refreshes']:,} refreshes)")
    print(f"RSS {s['before']['VmRSS']} kB -> {s['after']['VmRSS']} kB: {growth['VmRSS']:+.2f} % (target <= 1 %)")
    print(f"of which anonymous (RssAnon) {s['before']['RssAnon']} kB -> {s['after']['RssAnon']} kB: "
          f"{s['after']['RssAnon'] - s['before']['RssAnon']:+d} kB, {growth['RssAnon']:+.2f} %")
    print(f"RSS along the way, every {s['calls'] // s['checkpoints']:,} calls / {s['refreshes'] // s['checkpoints']:,} refreshes (kB): "
          + ", ".join(f"{a['VmRSS']} (anon {a['RssAnon']})" for a in s["along"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=int, default=60, help="seconds of load per page, over all rounds (default 60)")
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds the load of each page is split into (default 6)")
    ap.add_argument("--no-pin", action="store_true", help="do not give wrk a CPU of its own")
    ap.add_argument("--ttl", type=int, default=5)
    ap.add_argument("--no-soak", action="store_true", help="skip the soak")
    ap.add_argument("--soak-only", action="store_true", help="run the soak alone (about 30 s; no wrk or nginx needed)")
    ap.add_argument("--decompose", action="store_true",
                    help="also load (d) the loop over a literal array, "
                         "(f) the call alone (see PAGE_LOOP_LITERAL) and (g) page (b) with a TTL of an hour")
    ap.add_argument("--pages", default="", metavar="KEYS",
                    help="more pages to load, by letter: any of dfg (see --decompose) and l, page (k) with a TTL of an hour")
    ap.add_argument("--other-so", metavar="PATH", nargs="+", default=[],
                    help="also load page (b) with these builds of the extension, as (h), (i), (j): builds compared in one run")
    args = ap.parse_args()
    if args.soak_only:
        with AwsStack() as aws:
            print_soak(soak(bench_env(aws), aws.moto.url))
        return
    global LOAD_CPUS, SERVER_CPUS, OTHER_SO
    if len(args.other_so) > 3:
        sys.exit("fleet.py: at most three --other-so builds")
    OTHER_SO = dict(zip("hij", args.other_so))
    if set(args.pages) - set("dfgl"):
        sys.exit("fleet.py: --pages takes letters among d, e, f, g and l")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2 and not args.no_pin:
        LOAD_CPUS, SERVER_CPUS = {cpus[0]}, set(cpus[1:])
        # This process runs the fault proxy and starts moto: they stand in
        # for SSM, which is not on the host, so they stay off the servers' CPUs.
        place(LOAD_CPUS)
    if not shutil.which("wrk"):
        sys.exit("fleet.py: wrk is not installed (apt install wrk)")
    work = tempfile.mkdtemp(prefix="ssm-fleet-")
    # The shared directories on tmpfs, as the default (`auto`, under
    # /dev/shm) puts them: on ext4, replacing the entry by rename() makes
    # the refresh write the file back to disk (auto_da_alloc), a cost a
    # default install does not have.
    shared_root = tempfile.mkdtemp(prefix="ssm-fleet-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    os.chmod(shared_root, 0o711)
    os.chmod(work, 0o777)  # php-fpm runs as nobody when we are root: its log and pid go here
    procs = []
    try:
        with AwsStack() as aws:
            env = bench_env(aws)
            extra = "".join(dict.fromkeys(("dfg" if args.decompose else "") + args.pages))
            keys = "abckm" + extra + "".join(OTHER_SO)
            for key in keys:
                with open(os.path.join(work, PAGES[key][0]), "w") as f:
                    f.write(PAGES[key][1])
            fpm = {k: free_port() for k in keys}
            web = {k: free_port() for k in keys}
            procs.append(start_nginx(work, [(web[k], fpm[k], PAGES[k][0]) for k in keys]))
            # Rounds, each with fresh pools: a process's memory layout (ASLR)
            # can make one pool a few per cent faster than an identical one
            # for its whole life, so each round starts new masters and the
            # figures average over layouts. Within a round the pages take
            # turns, the order rotating, so that drift hits them alike.
            runs = {k: [] for k in keys}
            mem = {k: [] for k in keys}
            refresh_cost = {k: [] for k in keys}
            ssm_requests, bound, round_seconds = 0, 0.0, max(1, args.duration // args.rounds)
            for i in range(args.rounds):
                pools = start_pools(work, shared_root, i, fpm, args.ttl, env)
                procs.extend(pools.values())
                before, started = aws_calls(aws), time.time()
                for key in (keys * 2)[i % len(keys):i % len(keys) + len(keys)]:
                    # Warm-up (workers, opcache, the first fetch) right before
                    # the load, so that every pool starts it in one state: an
                    # extension pool left idle while the others are loaded
                    # starts with its value past the TTL and its fetch thread
                    # gone, and pays that transient in its p99.
                    wrk(web[key], 2)
                    threads, calls = fetch_thread_ns(pools[key].pid), aws_calls(aws)
                    runs[key].append(wrk(web[key], round_seconds))
                    # A thread that ended during the load is not counted; under load they stay.
                    spent = sum(t - threads.get(tid, 0) for tid, t in fetch_thread_ns(pools[key].pid).items())
                    refresh_cost[key].append((spent, aws_calls(aws) - calls))
                ssm_requests += aws_calls(aws) - before
                # Each pool that calls the extension has a shared directory of its own: a host each.
                bound += sum((time.time() - started) / ttl_of(k, args.ttl) + 1 for k in keys if ttl_of(k, args.ttl))
                for key, pool in pools.items():
                    mem[key].append([private_dirty_kb(p) for p in children(pool.pid)])
                    stop(pool)
                    procs.remove(pool)
            a, b, c, k, m_ = (merge(runs[key]) for key in "abckm")
            s = None
            if not args.no_soak:
                progress("soak: 1,000,000 calls, 10,000 refreshes")
                s = soak(env, aws.moto.url)

        mem_a, mem_b, mem_c, mem_m = (sum(mem[k], []) for k in "abcm")
        avg_a, avg_b, avg_c, avg_m = (sum(x) / len(x) for x in (mem_a, mem_b, mem_c, mem_m))
        placement = f"wrk on CPU {sorted(LOAD_CPUS)}, servers on CPUs {sorted(SERVER_CPUS)}" if LOAD_CPUS else "no CPU placement"
        print(f"== php-fpm, 8 static workers, nginx, wrk -t2 -c16 for {args.duration} s per page "
              f"in {args.rounds} rounds, fresh pools each round ({placement})")
        print(f"{'':36} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
        for key in keys:
            m = merge(runs[key])
            label = LABELS[key].format(ttl=args.ttl)
            print(f"{label:36} {m['rps']:10.0f} {m['p50_ms']:8.3f} {m['p99_ms']:8.3f} {m['errors']:8d}")
        print(f"throughput ratio b/a {b['rps'] / a['rps']:.3f}, k/a {k['rps'] / a['rps']:.3f}, "
              f"m/a {m_['rps'] / a['rps']:.3f} (target >= 0.98); control c/a {c['rps'] / a['rps']:.3f}")
        print(f"p99 ratio b/a        {b['p99_ms'] / a['p99_ms']:.3f}, k/a {k['p99_ms'] / a['p99_ms']:.3f}, "
              f"m/a {m_['p99_ms'] / a['p99_ms']:.3f} (target <= 1.05); control c/a {c['p99_ms'] / a['p99_ms']:.3f}")
        for label, key in (("throughput", "rps"), ("p99", "p99_ms")):
            for pair in keys[1:]:
                mean, low, high = paired(runs[pair], runs["a"], key)
                print(f"per-round {label} ratio {pair}/a: mean {mean:.3f}, 95 % interval {low:.3f} to {high:.3f}")
        print("per round, req/s and p99 ms:")
        for i in range(args.rounds):
            print(f"  round {i + 1}: " + "  ".join(
                f"{k} {runs[k][i]['rps']:7.0f} {runs[k][i]['p99_ms']:6.2f}" for k in keys))
        print("fetch threads' CPU per SSM request during the load (median round; requests in all rounds):")
        for key in keys:
            per_request = [ns / 1e6 / n for ns, n in refresh_cost[key] if n]
            if per_request:
                print(f"  ({key}) {median(per_request):6.2f} ms  (rounds: {', '.join(f'{x:.1f}' for x in per_request)}; "
                      f"{sum(n for _, n in refresh_cost[key])} requests)")
        print(f"GetParameter requests at the emulator: {ssm_requests} (target: at most one per TTL plus one per "
              f"host lifetime = {bound:.1f} over the {args.rounds} pools of {' and '.join(f'({k})' for k in keys if ttl_of(k, args.ttl))}, each alive ~{len(keys) * (round_seconds + 2)} s)")
        print()
        print("== private dirty memory per worker after the load (kB)")
        print(f"pool without the extension: avg {avg_a:.0f}  {sorted(mem_a)}")
        print(f"pool with the extension:    avg {avg_b:.0f}  per round: " + "; ".join(str(sorted(r)) for r in mem["b"]))
        print(f"pool with it loaded, never called: avg {avg_c:.0f}  {sorted(mem_c)}")
        print(f"added per worker on average: {avg_b - avg_a:.0f} kB (target <= 256); by loading alone: {avg_c - avg_a:.0f} kB; "
              f"with define_constants (m): {avg_m - avg_a:.0f} kB")
        print()
        if s is None:
            return
        print_soak(s)
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shared_root, ignore_errors=True)


def aws_calls(aws):
    import urllib.request
    counts = json.load(urllib.request.urlopen(aws.proxy.url + "/__proxy/counts"))
    return counts["by_target"].get("AmazonSSM.GetParameter", 0)


if __name__ == "__main__":
    main()
