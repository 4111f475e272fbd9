#!/usr/bin/env python3
"""Failover drill: kill the primary PostgreSQL under steady order traffic and
measure what the store loses, with the real ssm-db-monitor in the loop.

Run by bench/drill.sh, which puts this process in a network namespace of its
own whose hosts file maps moto's fake RDS endpoint names to two loopback
addresses (the machine's /etc/hosts is never touched):

  127.0.0.2  shop-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com          (primary)
  127.0.0.3  shop-db-standby.aaaaaaaaaa.us-west-2.rds.amazonaws.com  (standby)

What runs, all on loopback inside the namespace:
- moto (RDS, SSM) via tests/support/stack.py; the harness plays RDS's part:
  it reports the primary stopped and the promoted standby available;
- two Debian PostgreSQL 15 servers: a primary and a streaming standby made with
  pg_basebackup, with synchronous (--mode sync) or asynchronous (--mode async)
  replication;
- php-fpm with the ssm_db_config extension serving order.php: it inserts an
  order keyed by a client-supplied idempotency key in a transaction and
  acknowledges only after COMMIT; on a failed connection or statement it calls
  ssm_db_config_refresh() and tries once more;
- the real ssm-db-monitor (daemon, 1 s polls);
- a load generator: steady order rate over FastCGI, each order retried with the
  same key until acknowledged.

At --kill-at seconds the primary's processes get SIGKILL; the harness then
promotes the standby (pg_ctl promote) and tells moto (StopDBInstance on the
primary, StartDBInstance on the standby, which moto created stopped). The
monitor sees that on its next poll and publishes the standby's endpoint.

--mode cluster plays an Aurora DB cluster instead: moto's cluster
shop-aurora with two members, shop-aurora-1 (127.0.0.2, the writer) and
shop-aurora-2 (127.0.0.3), played by the same two PostgreSQL servers with
synchronous replication (Aurora's shared storage loses no acknowledged write).
At the kill the harness promotes the standby and calls moto's
FailoverDBCluster, which moves IsClusterWriter to shop-aurora-2. With
--publish writer-instance the monitor publishes shop-aurora-2's endpoint at its
next poll. With --publish cluster-endpoint the parameter holds the cluster
endpoint and nothing is written: what moves is the endpoint's DNS record, which
is MODELLED: the drill's hosts file (the namespace's, see bench/drill.sh) maps
the cluster endpoint to 127.0.0.2 until --dns-move-s seconds after the
failover was reported to moto, then to 127.0.0.3. Every host resolves it anew
for each connection (glibc reads the hosts file each time; php-fpm keeps no
DNS cache): real resolvers add up to the record's TTL (5 s), or more where
they ignore it.

Output: a JSON summary and a PNG timeline in --out.
"""
import argparse
import json
import os
import pwd
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
from stack import AwsStack  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
PRIMARY_IP, STANDBY_IP, LINK_IP = "127.0.0.2", "127.0.0.3", "127.0.0.4"
PRIMARY_HOST = "shop-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com"
STANDBY_HOST = "shop-db-standby.aaaaaaaaaa.us-west-2.rds.amazonaws.com"
DB_PASSWORD = "drill-" + "".join(random.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(16))
FPM_PORT = 9000
HOSTS = "/etc/hosts"  # inside bench/drill.sh's namespace: /etc/netns/<ns>/hosts, bind-mounted

ORDER_PHP = r"""<?php
// One order: insert under the client's idempotency key, acknowledge after COMMIT.
function connect(array $c): PDO {
    $host = trim(substr($c['DB_HOST'], 0, strrpos($c['DB_HOST'], ':')), '[]');
    return new PDO("pgsql:host=$host;port={$c['DB_PORT']};dbname={$c['DB_NAME']};connect_timeout=1",
        $c['DB_USER'], $c['DB_PASSWORD'], [PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION]);
}
function place(PDO $db, string $key): string {
    $db->beginTransaction();
    $db->prepare('INSERT INTO orders (idem, amount) VALUES (?, 1) ON CONFLICT (idem) DO NOTHING')->execute([$key]);
    $db->commit();
    return (string) $db->query('SELECT inet_server_addr()')->fetchColumn();
}
$key = (string) ($_GET['key'] ?? '');
try {
    $server = place(connect(ssm_db_config()), $key);
} catch (Throwable $e) {
    // The writer may have moved: read the parameter now and try once more.
    try {
        $server = place(connect(ssm_db_config_refresh()), $key);
    } catch (Throwable $e2) {
        http_response_code(503);
        echo 'fail ', get_class($e2);
        exit;
    }
}
echo "ok $server";
"""


def log(msg):
    print(f"[drill {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def as_postgres(cmd, **kw):
    return run(["runuser", "-u", "postgres", "--"] + cmd, **kw)


def psql(ip, sql, db="postgres", user="postgres"):
    return as_postgres(["psql", "-h", ip, "-p", "5432", "-U", user,
                        "-d", db, "-Atq", "-v", "ON_ERROR_STOP=1", "-c", sql]).stdout.strip()


def set_hosts(names):
    """Maps each name to an address in the namespace's hosts file, replacing
    the lines this drill wrote before (marked "# drill")."""
    with open(HOSTS) as f:
        lines = [line for line in f.read().splitlines() if not line.endswith("# drill")]
    lines += [f"{ip} {name} # drill" for name, ip in names.items()]
    with open(HOSTS, "w") as f:  # in place: the file is a bind mount
        f.write("\n".join(lines) + "\n")


# --- PostgreSQL -------------------------------------------------------------

def start_primary(work, mode):
    data = os.path.join(work, "primary")
    sock = os.path.join(work, "sock-primary")
    as_postgres(["mkdir", sock])
    as_postgres([f"{PGBIN}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write(f"""
listen_addresses = '{PRIMARY_IP}'
port = 5432
unix_socket_directories = '{sock}'
wal_level = replica
max_wal_senders = 5
wal_keep_size = '256MB'
synchronous_commit = on
hot_standby = on
# In the data folder, not /dev/shm: the drill kills this server.
dynamic_shared_memory_type = mmap
""")
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write("local all all trust\nhost replication postgres 127.0.0.0/8 trust\n"
                "host all postgres 127.0.0.0/8 trust\nhost all all 127.0.0.0/8 scram-sha-256\n")
    as_postgres([f"{PGBIN}/pg_ctl", "-D", data, "-l", os.path.join(work, "primary.log"), "-w", "start"])
    psql(PRIMARY_IP, f"CREATE ROLE wp LOGIN PASSWORD '{DB_PASSWORD}'")
    psql(PRIMARY_IP, "CREATE DATABASE shop OWNER wp")
    psql(PRIMARY_IP, "CREATE TABLE orders (id bigserial PRIMARY KEY, idem text NOT NULL UNIQUE, amount int NOT NULL,"
                     " created timestamptz NOT NULL DEFAULT clock_timestamp()); ALTER TABLE orders OWNER TO wp", db="shop")
    return data


def start_standby(work, mode, link_ip=None):
    data = os.path.join(work, "standby")
    sock = os.path.join(work, "sock-standby")
    as_postgres(["mkdir", sock])
    as_postgres(["pg_basebackup", "-h", PRIMARY_IP, "-p", "5432", "-U", "postgres", "-D", data, "-R", "-X", "stream",
                 "-c", "fast"])
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        # wal_retrieve_retry_interval: once the primary is gone, the standby
        # retries its WAL source at this interval, and at the default 5 s a
        # promotion could wait for the next retry: the drill measures the
        # monitor and the hosts, not that wait.
        f.write(f"\nlisten_addresses = '{STANDBY_IP}'\nunix_socket_directories = '{sock}'\ncluster_name = 'standby'\n"
                "wal_retrieve_retry_interval = '100ms'\n")
    if link_ip:
        auto = os.path.join(data, "postgresql.auto.conf")
        with open(auto) as f:
            text = f.read()
        with open(auto, "w") as f:
            f.write(text.replace(f"host={PRIMARY_IP}", f"host={link_ip}"))
    as_postgres([f"{PGBIN}/pg_ctl", "-D", data, "-l", os.path.join(work, "standby.log"), "-w", "start"])
    if mode == "sync":
        # Only now: with a synchronous standby named but absent, every commit would wait.
        psql(PRIMARY_IP, "ALTER SYSTEM SET synchronous_standby_names = 'standby'")
        psql(PRIMARY_IP, "SELECT pg_reload_conf()")
    want = "sync" if mode == "sync" else "async"
    deadline = time.time() + 30
    while time.time() < deadline:
        state = psql(PRIMARY_IP, "SELECT state || ' ' || sync_state FROM pg_stat_replication WHERE application_name = 'standby'")
        if state == f"streaming {want}":
            return data
        time.sleep(0.2)
    raise RuntimeError(f"standby did not reach 'streaming {want}': {state!r}")


def kill_cluster(data):
    """SIGKILL the postmaster and all of its children, by process id."""
    with open(os.path.join(data, "postmaster.pid")) as f:
        pm = int(f.readline())
    pids = [pm]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pm:
                pids.append(int(entry))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


class DelayLink:
    """A TCP relay that stands for the network between the regions: the
    standby's replication connection goes through it, and every byte waits
    `delay` seconds in each direction. cut() is the region going dark with the
    primary: whatever is still in flight is dropped, as it would be."""

    def __init__(self, listen_ip, upstream_ip, delay):
        self.delay, self.upstream = delay, (upstream_ip, 5432)
        self.cut_event = threading.Event()
        self.sockets = []
        self.server = socket.create_server((listen_ip, 5432))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.cut_event.is_set():
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            self.sockets += [down, up]
            for src, dst in ((down, up), (up, down)):
                q = []
                cond = threading.Condition()
                threading.Thread(target=self._read, args=(src, q, cond), daemon=True).start()
                threading.Thread(target=self._write, args=(dst, q, cond), daemon=True).start()

    def _read(self, src, q, cond):
        while not self.cut_event.is_set():
            try:
                chunk = src.recv(65536)
            except OSError:
                chunk = b""
            with cond:
                q.append((time.time() + self.delay, chunk))
                cond.notify()
            if not chunk:
                return

    def _write(self, dst, q, cond):
        while not self.cut_event.is_set():
            with cond:
                while not q:
                    cond.wait()
                due, chunk = q.pop(0)
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            if self.cut_event.is_set():
                return
            try:
                if not chunk:
                    dst.shutdown(socket.SHUT_WR)
                    return
                dst.sendall(chunk)
            except OSError:
                return

    def cut(self):
        self.cut_event.set()
        for sock in self.sockets + [self.server]:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            except OSError:
                pass


# --- FastCGI client ------------------------------------------------------------

def fcgi_get(port, script, query, timeout=5.0):
    """One FastCGI request (GET); returns (status, body)."""
    def record(rtype, content, rid=1):
        return struct.pack("!BBHHBx", 1, rtype, rid, len(content), 0) + content

    def nv(k, v):
        k, v = k.encode(), v.encode()
        enc = lambda n: struct.pack("!B", n) if n < 128 else struct.pack("!I", n | 0x80000000)
        return enc(len(k)) + enc(len(v)) + k + v

    params = b"".join(nv(k, v) for k, v in {
        "SCRIPT_FILENAME": script, "REQUEST_METHOD": "GET", "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1", "GATEWAY_INTERFACE": "CGI/1.1",
    }.items())
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(record(1, struct.pack("!HB5x", 1, 0)) + record(4, params) + record(4, b"") + record(5, b""))
        raw = b""
        while True:  # without FCGI_KEEP_CONN, php-fpm closes after END_REQUEST
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    out = b""
    while len(raw) >= 8:
        _, rtype, _, clen, plen = struct.unpack("!BBHHB", raw[:7])
        if rtype == 6:  # FCGI_STDOUT
            out += raw[8:8 + clen]
        raw = raw[8 + clen + plen:]
    head, _, body = out.partition(b"\r\n\r\n")
    status = 200
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"status:"):
            status = int(line.split()[1])
    return status, body.decode("utf-8", "replace")


# --- the drill -------------------------------------------------------------------

def add_common_arguments(ap, check_help):
    """The arguments every drill takes (this one and bench/wp_drill.py)."""
    ap.add_argument("--poll-interval", type=float, default=1.0, help="the monitor's poll interval")
    ap.add_argument("--check", action="store_true", help=check_help)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--extension", default=os.environ.get("SSM_DB_CONFIG_SO", os.path.join(ROOT, "target/release/libssm_db_config.so")))
    ap.add_argument("--monitor", default=os.path.join(ROOT, "target/debug/ssm-db-monitor"))


def check_stage(args, how):
    """Exits unless the drill runs in its namespace (`how` says how to start it) with both binaries
    built; makes the results folder."""
    if socket.gethostbyname(PRIMARY_HOST) != PRIMARY_IP:
        sys.exit(f"run me through {how} (the RDS names must resolve to loopback in a namespace)")
    for path in (args.extension, args.monitor):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing (build it first)")
    os.makedirs(args.out, exist_ok=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["sync", "async", "cluster"], required=True)
    ap.add_argument("--publish", choices=["writer-instance", "cluster-endpoint"], default="writer-instance",
                    help="--mode cluster: what the monitor publishes")
    ap.add_argument("--dns-move-s", type=float, default=5.0,
                    help="--mode cluster, cluster-endpoint: the modelled delay from the failover to the cluster endpoint resolving to the new writer")
    ap.add_argument("--rate", type=float, default=100.0, help="new orders per second")
    ap.add_argument("--workers", type=int, default=8, help="concurrent clients (and php-fpm workers)")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--kill-at", type=float, default=8.0)
    ap.add_argument("--link-delay-ms", type=float, default=0.0,
                    help="one-way delay of the replication link (a cross-region replica); the link is cut with the kill")
    add_common_arguments(ap, "exit 1 unless the synchronous targets hold: nothing lost, no duplicate, recovery within the poll interval + 2 s"
                             " (cluster-endpoint: from the modelled DNS move to 2 s after it)")
    args = ap.parse_args()
    check_stage(args, "bench/drill.sh")

    cluster = args.mode == "cluster"
    replication = "sync" if cluster else args.mode
    work = tempfile.mkdtemp(prefix=f"ssm-drill-{args.mode}-")
    os.chmod(work, 0o755)
    shutil.chown(work, "postgres", "postgres")
    procs = []
    primary = standby = None
    exit_code = 0
    aws = AwsStack().__enter__()
    try:
        env = dict(os.environ, **{k: v for k, v in aws.env().items() if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"})

        log(f"PostgreSQL primary and {replication} standby")
        primary = start_primary(work, replication)
        link = None
        if args.link_delay_ms > 0:
            link = DelayLink(LINK_IP, PRIMARY_IP, args.link_delay_ms / 1000)
        standby = start_standby(work, replication, LINK_IP if link else None)

        log("moto: instances and the parameter")
        rds_east, rds_west, ssm = aws.client("rds"), None, aws.client("ssm")
        import boto3
        rds_west = boto3.client("rds", endpoint_url=aws.moto.url, region_name="us-west-2",
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        if cluster:
            rds_east.create_db_cluster(DBClusterIdentifier="shop-aurora", Engine="aurora-postgresql",
                                       MasterUsername="admin", MasterUserPassword="not-used-here")
            members = {}
            for n, ip in ((1, PRIMARY_IP), (2, STANDBY_IP)):
                rds_east.create_db_instance(DBInstanceIdentifier=f"shop-aurora-{n}", DBClusterIdentifier="shop-aurora",
                                            Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
                e = rds_east.describe_db_instances(DBInstanceIdentifier=f"shop-aurora-{n}")["DBInstances"][0]["Endpoint"]
                assert e["Port"] == 5432, e
                members[e["Address"]] = ip
            c = rds_east.describe_db_clusters(DBClusterIdentifier="shop-aurora")["DBClusters"][0]
            cluster_host = c["Endpoint"]
            old_host, new_host = list(members)
            set_hosts(dict(members, **{cluster_host: PRIMARY_IP}))
            if args.publish == "cluster-endpoint":
                old_host = new_host = cluster_host
            writer_name = "shop-aurora-2"
        else:
            for client, ident in ((rds_east, "shop-db"), (rds_west, "shop-db-standby")):
                client.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                                          AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-here")
            # The standby stands in for a replica: moto cannot show a promotion, so it
            # is reported stopped until the harness "promotes" it.
            rds_west.stop_db_instance(DBInstanceIdentifier="shop-db-standby")
            old_host, new_host, writer_name = PRIMARY_HOST, STANDBY_HOST, "shop-db-standby"
        ssm.put_parameter(Name="/shop/db", Type="SecureString", Overwrite=True,
                          Value=f"postgresql://wp:{DB_PASSWORD}@{old_host}:5432/shop?sslmode=disable")

        log("ssm-db-monitor")
        config = os.path.join(work, "monitor.toml")
        with open(config, "w") as f:
            f.write(f'poll_interval_secs = {args.poll_interval}\nendpoint_url = "{aws.moto.url}"\nlog_format = "json"\n')
            if cluster:
                f.write(f'[cluster]\nid = "shop-aurora"\nregion = "us-east-1"\npublish = "{args.publish}"\n')
            else:
                f.write('[primary]\nid = "shop-db"\nregion = "us-east-1"\n'
                        '[[replicas]]\nid = "shop-db-standby"\nregion = "us-west-2"\n')
            f.write('[[parameters]]\nname = "/shop/db"\nregion = "us-east-1"\n')
        monitor_log = open(os.path.join(work, "monitor.log"), "w")
        monitor = subprocess.Popen([args.monitor, "--config", config], env=env, stdout=monitor_log, stderr=monitor_log)
        procs.append(monitor)

        log("php-fpm with the extension")
        fpm_dir = os.path.join(work, "fpm")
        os.makedirs(fpm_dir)
        so = os.path.join(fpm_dir, "ssm_db_config.so")
        shutil.copy(args.extension, so)
        script = os.path.join(fpm_dir, "order.php")
        with open(script, "w") as f:
            f.write(ORDER_PHP)
        with open(os.path.join(fpm_dir, "fpm.conf"), "w") as f:
            f.write(f"[global]\nerror_log = {fpm_dir}/fpm.log\ndaemonize = no\npid = {fpm_dir}/fpm.pid\n"
                    f"[pool]\nlisten = 127.0.0.1:{FPM_PORT}\npm = static\npm.max_children = {args.workers}\n"
                    "catch_workers_output = yes\n")
        for p in (fpm_dir, so, script):
            os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        os.chmod(fpm_dir, 0o777)
        fpm = subprocess.Popen(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/usr/sbin/php-fpm8.2", "-F",
             "-y", f"{fpm_dir}/fpm.conf", "-p", fpm_dir, "-d", f"extension={so}", "-d", f"error_log={fpm_dir}/php.log",
             "-d", "ssm_db_config.parameter=/shop/db", "-d", "ssm_db_config.region=us-east-1",
             "-d", f"ssm_db_config.endpoint_url={aws.moto.url}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(fpm)
        deadline = time.time() + 15
        while True:
            try:
                status, body = fcgi_get(FPM_PORT, script, "key=warmup")
                if body.startswith("ok"):
                    break
            except OSError:
                pass
            if time.time() > deadline:
                raise RuntimeError("php-fpm's order endpoint did not answer ok")
            time.sleep(0.1)

        # Wait until the monitor has polled at least once, so that its first
        # poll is not part of the measurement.
        deadline = time.time() + 15
        while '"message":"monitor started"' not in open(monitor_log.name).read() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(args.poll_interval * 1.5)

        log(f"load: {args.rate:g} orders/s from {args.workers} clients for {args.duration:g} s, kill at {args.kill_at:g} s")
        events = []  # (t, kind, key, server)
        lock = threading.Lock()
        t0 = time.time()
        stop_at = t0 + args.duration
        acked = {}
        latencies = []

        def client(w):
            seq = 0
            period = args.workers / args.rate
            next_at = t0 + w * period / args.workers
            while True:
                now = time.time()
                if next_at >= stop_at:
                    return
                if now < next_at:
                    time.sleep(next_at - now)
                key = f"w{w}-{seq}"
                seq += 1
                next_at += period
                started = time.time()
                while True:  # retry the same key until acknowledged
                    try:
                        status, body = fcgi_get(FPM_PORT, script, f"key={key}")
                    except OSError as e:
                        status, body = 0, f"fail {e.__class__.__name__}"
                    t = time.time()
                    if status == 200 and body.startswith("ok "):
                        with lock:
                            events.append((t - t0, "ack", key, body[3:].strip()))
                            latencies.append((t - t0, t - started))
                            acked[key] = body[3:].strip()
                        break
                    with lock:
                        events.append((t - t0, "fail", key, body[:60]))
                    if t > stop_at + 30:
                        return
                    time.sleep(0.05)

        threads = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(args.workers)]
        for t in threads:
            t.start()
        time.sleep(max(0.0, t0 + args.kill_at - 0.3 - time.time()))
        # How far behind the standby is just before the kill: the asynchronous
        # loss window is what has been acknowledged but not yet flushed there.
        lag = psql(PRIMARY_IP, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn) || ' ' ||"
                               " coalesce(extract(epoch FROM flush_lag) * 1000, 0)::numeric(10,3)"
                               " FROM pg_stat_replication WHERE application_name = 'standby'").split()
        time.sleep(max(0.0, t0 + args.kill_at - time.time()))

        t_kill = time.time() - t0
        if link:
            link.cut()
        killed = kill_cluster(primary)
        log(f"killed the primary ({len(killed)} processes) at {t_kill:.3f} s")
        # The harness plays RDS: the primary is down, the standby is promoted.
        if not cluster:
            rds_east.stop_db_instance(DBInstanceIdentifier="shop-db")
        as_postgres([f"{PGBIN}/pg_ctl", "-D", standby, "-w", "promote"])
        t_promote = time.time() - t0
        if cluster:
            rds_east.failover_db_cluster(DBClusterIdentifier="shop-aurora", TargetDBInstanceIdentifier="shop-aurora-2")
        else:
            rds_west.start_db_instance(DBInstanceIdentifier="shop-db-standby")
        t_rds = time.time() - t0
        log(f"standby promoted at {t_promote:.3f} s, reported to moto at {t_rds:.3f} s")
        t_dns = None
        if cluster and args.publish == "cluster-endpoint":
            # The modelled DNS move of the cluster endpoint (see the module doc).
            time.sleep(max(0.0, t0 + t_rds + args.dns_move_s - time.time()))
            set_hosts(dict(members, **{cluster_host: STANDBY_IP}))
            t_dns = time.time() - t0
            log(f"the cluster endpoint resolves to the new writer from {t_dns:.3f} s (modelled)")

        for t in threads:
            t.join(timeout=args.duration + 60)
        log("load finished")

        # The monitor's publish time, from its JSON log.
        t_publish = None
        for line in open(monitor_log.name):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("message") == "published the writer's endpoint" and ev.get("writer", "").startswith(writer_name):
                ts = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).timestamp()
                t_publish = ts - t0
        value = ssm.get_parameter(Name="/shop/db", WithDecryption=True)["Parameter"]["Value"]
        assert DB_PASSWORD in value and new_host in value, "the monitor kept the credentials and published the new writer"

        rows = psql(STANDBY_IP, "SELECT idem FROM orders", db="shop").splitlines()
        stored = set(rows)
        dup = int(psql(STANDBY_IP, "SELECT count(*) - count(DISTINCT idem) FROM orders", db="shop"))
        acks = [e for e in events if e[1] == "ack"]
        fails = [e for e in events if e[1] == "fail"]
        missing = sorted(k for k in acked if k not in stored)
        first_new = min((e[0] for e in acks if e[3] == STANDBY_IP and e[0] > t_kill), default=None)
        last_old = max((e[0] for e in acks if e[3] == PRIMARY_IP), default=None)
        before = sorted(lat for t, lat in latencies if t < t_kill)

        def pct(values, q):
            return round(values[min(int(len(values) * q), len(values) - 1)] * 1000, 1) if values else None

        summary = {
            "mode": args.mode,
            "publish": args.publish if cluster else None,
            "dns_move_modelled_s": args.dns_move_s if t_dns is not None else None,
            "dns_moved_s": round(t_dns, 3) if t_dns is not None else None,
            "rate_per_s": args.rate,
            "clients": args.workers,
            "duration_s": args.duration,
            "monitor_poll_interval_s": args.poll_interval,
            "replication_link_one_way_delay_ms": args.link_delay_ms,
            # Before the kill only: afterwards the promoted standby has no standby of its own.
            "ack_latency_ms_p50_before_kill": pct(before, 0.50),
            "ack_latency_ms_p99_before_kill": pct(before, 0.99),
            "orders_acknowledged": len(acked),
            "failed_attempts": len(fails),
            "acknowledged_missing_on_new_primary": len(missing),
            "missing_keys_sample": missing[:10],
            "duplicated_idempotency_keys": dup,
            "standby_unflushed_bytes_0_3s_before_kill": int(float(lag[0])) if lag else None,
            "standby_flush_lag_ms_0_3s_before_kill": float(lag[1]) if len(lag) > 1 else None,
            "kill_s": round(t_kill, 3),
            "promoted_s": round(t_promote, 3),
            "reported_to_rds_s": round(t_rds, 3),
            "published_s": round(t_publish, 3) if t_publish is not None else None,
            "last_ack_on_old_primary_s": round(last_old, 3) if last_old is not None else None,
            "first_ack_on_new_primary_s": round(first_new, 3) if first_new is not None else None,
            "recovery_s": round(first_new - t_kill, 3) if first_new is not None else None,
        }
        name = f"drill-{args.mode}" + (f"-{args.publish}" if cluster else "") + \
            (f"-link{args.link_delay_ms:g}ms" if args.link_delay_ms else "")
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(summary, f, indent=2)
        plot(events, summary, os.path.join(args.out, name + ".png"))
        print(json.dumps(summary, indent=2))
        if args.check and replication == "sync":
            # What the design allows: one monitor poll to see the promoted
            # standby and publish it, one interval of the host's forced-refresh
            # limit (a refresh just before the publish returned the old value;
            # core::plan::FORCED_MIN_INTERVAL, 1 s), and 1 s for the promotion
            # itself and reconnecting. Measured recoveries land anywhere in it.
            budget = args.poll_interval + 2.0
            problems = []
            if t_dns is not None:
                # No write to wait for: hosts follow when the name moves, and
                # then within the same retry and refresh second.
                budget = t_dns - t_kill + 2.0
                if summary["recovery_s"] is not None and summary["recovery_s"] < t_dns - t_kill:
                    problems.append(f"recovery {summary['recovery_s']} s came before the modelled DNS move: the model is not in effect")
            if missing:
                problems.append(f"{len(missing)} acknowledged orders are missing on the new primary")
            if dup:
                problems.append(f"{dup} duplicated idempotency keys")
            if summary["recovery_s"] is None or summary["recovery_s"] > budget:
                problems.append(f"recovery {summary['recovery_s']} s is over {budget:g} s")
            if problems:
                log("FAILED: " + "; ".join(problems))
                exit_code = 1
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
        for data in (standby, primary):
            if data and os.path.exists(os.path.join(data, "postmaster.pid")):
                subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                               capture_output=True)
        aws.__exit__(None, None, None)
        if os.environ.get("DRILL_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    sys.exit(exit_code)


def plot(events, s, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    end = max([e[0] for e in events] + [s["duration_s"]])
    bins = int(end / 0.1) + 1
    ack, fail = [0] * bins, [0] * bins
    for t, kind, _, _ in events:
        (ack if kind == "ack" else fail)[min(int(t / 0.1), bins - 1)] += 1
    xs = [i * 0.1 for i in range(bins)]
    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
    ax.bar(xs, ack, width=0.1, align="edge", color="#2b8a3e", label="acknowledged orders")
    ax.bar(xs, [-f for f in fail], width=0.1, align="edge", color="#c92a2a", label="failed attempts (shown negative)")
    top = ax.get_ylim()[1]
    for i, (key, label, color) in enumerate((("kill_s", "primary killed", "black"),
                                             ("promoted_s", "standby promoted", "#1971c2"),
                                             ("published_s", "monitor published", "#e67700"),
                                             ("dns_moved_s", "cluster endpoint DNS moved (modelled)", "#7048e8"))):
        if s.get(key) is not None:
            ax.axvline(s[key], color=color, linestyle="--", linewidth=1.2)
            ax.text(s[key] + 0.05, top * (0.92 - 0.12 * i), f"{label} ({s[key]:.2f} s)", color=color, fontsize=9,
                    bbox=dict(facecolor="white", alpha=0.85, edgecolor="none", pad=1))
    ax.set_xlabel("seconds since the load started (100 ms bins)")
    ax.set_ylabel("per 100 ms")
    link = f", {s['replication_link_one_way_delay_ms']:g} ms link" if s["replication_link_one_way_delay_ms"] else ""
    what = f"Aurora cluster, {s['publish']}" if s["mode"] == "cluster" else f"{s['mode']} replication{link}"
    ax.set_title(f"Failover drill, {what}: {s['orders_acknowledged']} orders acknowledged, "
                 f"{s['acknowledged_missing_on_new_primary']} lost, {s['failed_attempts']} failed attempts, "
                 f"recovery {s['recovery_s']} s")
    ax.legend(loc="lower left", fontsize=9)
    ax.axhline(0, color="grey", linewidth=0.5)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == "__main__":
    main()
