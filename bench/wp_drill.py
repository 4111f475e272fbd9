#!/usr/bin/env python3
"""WordPress failover drill: a long WordPress request (a CLI script through
wp-load.php, with the db.php drop-in) inserts orders in a loop while the
MySQL writer is killed and a semi-synchronous replica takes over; the real
ssm-db-monitor publishes the new writer into moto's SSM.

The same stage as bench/failover_drill.py (run by bench/drill.sh in its network
namespace, moto via tests/support/stack.py, the monitor with 1 s polls, the
harness playing RDS), with MariaDB instead of PostgreSQL because the drop-in
extends WordPress's mysqli wpdb:

  127.0.0.2:3306  shop-db...rds.amazonaws.com          primary
  127.0.0.3:3306  shop-db-standby...rds.amazonaws.com  replica, read-only

Replication is semi-synchronous with the AFTER_SYNC wait point (MariaDB's
lossless mode): a COMMIT returns to the client only after the replica has the
transaction in its relay log, so every acknowledged INSERT survives the kill.

tests/wordpress/long-request.php prints one JSON line per order: written (the
INSERT returned 1), unknown (the drop-in reported the outcome unknown: not
repeated), failed (certainly not run: repeated with the same client id). Orders
have no unique key, so a statement run twice shows as a duplicated client id.

At --kill-at seconds the primary's mariadbd gets SIGKILL; the harness promotes
the replica (applies its relay log, stops replication, read_only off) and tells
moto; the monitor publishes on its next poll; the script, still in the same
request, follows through the drop-in. Output: a JSON summary in --out.
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "support"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from stack import AwsStack  # noqa: E402
from failover_drill import PRIMARY_IP, STANDBY_IP, PRIMARY_HOST, STANDBY_HOST, add_common_arguments, check_stage, log  # noqa: E402

PORT = 3306
DB_PASSWORD = "drill-" + "".join(random.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(16))
WP_SOURCE = os.environ.get("WP_SOURCE", "/usr/share/wordpress")


def sql(sock, statement, db=None):
    cmd = ["mariadb", "--no-defaults", f"--socket={sock}", "-uroot", "--batch", "--skip-column-names", "-e", statement]
    if db:
        cmd.insert(-2, db)
    return subprocess.run(cmd, check=True, text=True, capture_output=True).stdout.strip()


def start_mariadb(work, name, ip, server_id, extra):
    d = os.path.join(work, name)
    os.makedirs(os.path.join(d, "data"))
    shutil.chown(d, "mysql", "mysql")
    shutil.chown(os.path.join(d, "data"), "mysql", "mysql")
    subprocess.run(["mariadb-install-db", "--no-defaults", "--user=mysql", f"--datadir={d}/data",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True)
    proc = subprocess.Popen(
        ["mariadbd", "--no-defaults", "--user=mysql", f"--datadir={d}/data", f"--socket={d}/sock",
         f"--pid-file={d}/pid", f"--port={PORT}", f"--bind-address={ip}", "--skip-name-resolve",
         f"--log-error={d}/error.log", "--innodb-buffer-pool-size=32M", "--performance-schema=OFF",
         f"--server-id={server_id}", f"--log-bin={d}/data/binlog", "--binlog-format=ROW",
         "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=0"] + extra,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sock = f"{d}/sock"
    deadline = time.time() + 60
    while subprocess.run(["mariadb-admin", "--no-defaults", f"--socket={sock}", "-uroot", "ping"],
                         capture_output=True).returncode != 0:
        if time.time() > deadline or proc.poll() is not None:
            raise RuntimeError(f"mariadb {name} did not start (see {d}/error.log)")
        time.sleep(0.2)
    return proc, sock


def wait_until(what, check, timeout=30.0):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def semi_sync_on(sock):
    return sql(sock, "SHOW STATUS LIKE 'Rpl_semi_sync_master_status'").split()[-1] == "ON"


def promote(replica_sock):
    """What RDS does when it promotes a replica: apply what it received, stop
    replicating, accept writes."""
    sql(replica_sock, "STOP SLAVE IO_THREAD")

    def applied():
        status = sql(replica_sock, "SELECT @@gtid_slave_pos")
        io = [line for line in subprocess.run(
            ["mariadb", "--no-defaults", f"--socket={replica_sock}", "-uroot", "-e", "SHOW SLAVE STATUS\\G"],
            check=True, text=True, capture_output=True).stdout.splitlines() if "Gtid_IO_Pos:" in line]
        return io and io[0].split(":", 1)[1].strip() == status
    wait_until("the replica to apply its relay log", applied, 20)
    sql(replica_sock, "STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF")


def install_wordpress(work, env, php_ini):
    wp = os.path.join(work, "wordpress")
    shutil.copytree(WP_SOURCE, wp, symlinks=True)
    for base, _, files in os.walk(WP_SOURCE):
        for f in files:
            src = os.path.join(base, f)
            if os.path.islink(src) and os.path.exists(src):
                dst = os.path.join(wp, os.path.relpath(src, WP_SOURCE))
                os.remove(dst)
                os.symlink(os.path.realpath(src), dst)
    for f in (".htaccess", "wp-config.php"):
        if os.path.lexists(os.path.join(wp, f)):
            os.remove(os.path.join(wp, f))
    shutil.copytree(os.path.join(ROOT, "wp-plugin"), os.path.join(wp, "wp-content/plugins/ssm-db-config"))
    with open(os.path.join(ROOT, "tests/wordpress/wp-config.php.in")) as f:
        config = f.read().replace("@WP_URL@", env["WP_URL"])
    for i in range(1, 9):
        config = config.replace(f"@KEY{i}@", os.urandom(24).hex())
    with open(os.path.join(wp, "wp-config.php"), "w") as f:
        f.write(config)
    out = subprocess.run(["php"] + php_ini + [os.path.join(ROOT, "tests/wordpress/install-wordpress.php"), wp],
                         env=env, text=True, capture_output=True)
    if out.returncode != 0:
        raise RuntimeError("WordPress did not install: " + (out.stdout + out.stderr)[-2000:])
    shutil.copy(os.path.join(ROOT, "wp-plugin/dropins/db.php"), os.path.join(wp, "wp-content/db.php"))
    return wp


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=14.0, help="how long the script writes")
    ap.add_argument("--kill-at", type=float, default=4.0)
    add_common_arguments(ap, "exit 1 unless: no duplicated order, every written order on the new writer,"
                             " the first write on the new writer within 3 s of the monitor's publication")
    args = ap.parse_args()
    check_stage(args, "bench/drill.sh wordpress")

    work = tempfile.mkdtemp(prefix="ssm-wp-drill-")
    os.chmod(work, 0o755)
    procs = []
    exit_code = 0
    aws = AwsStack().__enter__()
    try:
        env = dict(os.environ, **{k: v for k, v in aws.env().items() if k.startswith("AWS_") and k != "AWS_ENDPOINT_URL"})
        env.update(WP_URL="http://127.0.0.1:8080", ADMIN_PASS=os.urandom(8).hex(), SUBSCRIBER_PASS=os.urandom(8).hex(),
                   SSM_DB_CONFIG_STATE_DIR=os.path.join(work, "state"))

        log("MariaDB primary and semi-synchronous replica")
        primary, psock = start_mariadb(work, "primary", PRIMARY_IP, 1, [
            "--rpl-semi-sync-master-wait-point=AFTER_SYNC",
            # Never fall back to asynchronous replication during the drill.
            "--rpl-semi-sync-master-timeout=60000"])
        procs.append(primary)
        replica, rsock = start_mariadb(work, "replica", STANDBY_IP, 2, [
            "--rpl-semi-sync-slave-enabled=ON", "--read-only=ON"])
        procs.append(replica)
        sql(psock, "CREATE USER 'repl'@'127.0.0.%' IDENTIFIED BY 'repl'; GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.%'")
        sql(rsock, f"CHANGE MASTER TO MASTER_HOST='{PRIMARY_IP}', MASTER_PORT={PORT}, MASTER_USER='repl', "
                   "MASTER_PASSWORD='repl', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1; START SLAVE")
        wait_until("the replica", lambda: sql(psock, "SHOW STATUS LIKE 'Rpl_semi_sync_master_clients'").split()[-1] == "1")
        # Only now: with semi-synchronous replication on and no replica, every commit would wait.
        sql(psock, "SET GLOBAL rpl_semi_sync_master_enabled = ON")
        wait_until("semi-synchronous replication", lambda: semi_sync_on(psock))
        sql(psock, f"CREATE DATABASE wp; CREATE USER 'wp'@'127.0.0.%' IDENTIFIED BY '{DB_PASSWORD}';"
                   " GRANT ALL ON wp.* TO 'wp'@'127.0.0.%'")

        log("moto: instances and the parameter")
        import boto3
        rds_east, ssm = aws.client("rds"), aws.client("ssm")
        rds_west = boto3.client("rds", endpoint_url=aws.moto.url, region_name="us-west-2",
                                aws_access_key_id="testing", aws_secret_access_key="testing")
        for client, ident in ((rds_east, "shop-db"), (rds_west, "shop-db-standby")):
            client.create_db_instance(DBInstanceIdentifier=ident, Engine="mysql", DBInstanceClass="db.t3.micro",
                                      AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-here")
        rds_west.stop_db_instance(DBInstanceIdentifier="shop-db-standby")
        ssm.put_parameter(Name="/wp/db", Type="SecureString", Overwrite=True,
                          Value=f"mysql://wp:{DB_PASSWORD}@{PRIMARY_HOST}:{PORT}/wp")

        php_ini = ["-d", f"extension={args.extension}", "-d", "ssm_db_config.parameter=/wp/db",
                   "-d", "ssm_db_config.region=us-east-1", "-d", f"ssm_db_config.endpoint_url={aws.moto.url}",
                   # Only the drop-in's refreshes can make the script see the new writer.
                   "-d", "ssm_db_config.ttl=300", "-d", "error_reporting=E_ALL",
                   "-d", f"error_log={work}/php.log", "-d", "display_errors=0"]
        log("WordPress: install, with the db.php drop-in")
        wp = install_wordpress(work, env, php_ini)
        sql(psock, "CREATE TABLE wp.wp_drill_orders (id bigint AUTO_INCREMENT PRIMARY KEY,"
                   " client_id varchar(64) NOT NULL, amount int NOT NULL, KEY (client_id)) ENGINE=InnoDB")

        log("ssm-db-monitor")
        config = os.path.join(work, "monitor.toml")
        with open(config, "w") as f:
            f.write(f'poll_interval_secs = {args.poll_interval}\nendpoint_url = "{aws.moto.url}"\nlog_format = "json"\n'
                    '[primary]\nid = "shop-db"\nregion = "us-east-1"\n'
                    '[[replicas]]\nid = "shop-db-standby"\nregion = "us-west-2"\n'
                    '[[parameters]]\nname = "/wp/db"\nregion = "us-east-1"\n')
        monitor_log = open(os.path.join(work, "monitor.log"), "w")
        procs.append(subprocess.Popen([args.monitor, "--config", config], env=env, stdout=monitor_log, stderr=monitor_log))
        wait_until("the monitor", lambda: '"message":"monitor started"' in open(monitor_log.name).read(), 15)
        time.sleep(args.poll_interval * 1.5)

        log(f"the long request: orders for {args.duration:g} s, primary killed at {args.kill_at:g} s")
        out_path = os.path.join(work, "orders.jsonl")
        with open(out_path, "w") as out:
            t0 = time.time()
            script = subprocess.Popen(["php"] + php_ini + [os.path.join(ROOT, "tests/wordpress/long-request.php"), wp,
                                                          str(args.duration)],
                                      env=env, stdout=out, stderr=subprocess.PIPE, text=True)
            procs.append(script)
            time.sleep(max(0.0, t0 + args.kill_at - 0.3 - time.time()))
            # Still semi-synchronous just before the kill (a timeout would have turned it off).
            sync_before_kill = semi_sync_on(psock)
            time.sleep(max(0.0, t0 + args.kill_at - time.time()))
            t_kill = time.time() - t0
            primary.send_signal(signal.SIGKILL)
            primary.wait()
            log(f"killed the primary at {t_kill:.3f} s")
            rds_east.stop_db_instance(DBInstanceIdentifier="shop-db")
            promote(rsock)
            t_promote = time.time() - t0
            rds_west.start_db_instance(DBInstanceIdentifier="shop-db-standby")
            log(f"replica promoted at {t_promote:.3f} s, reported available to moto")
            _, err = script.communicate(timeout=args.duration + 60)
        log(f"the long request ended with status {script.returncode}")

        t_publish = None
        for line in open(monitor_log.name):
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if ev.get("message") == "published the writer's endpoint" and ev.get("writer", "").startswith("shop-db-standby"):
                from datetime import datetime
                t_publish = datetime.fromisoformat(ev["timestamp"].replace("Z", "+00:00")).timestamp() - t0

        events = [json.loads(line) for line in open(out_path) if line.startswith("{")]
        written = [e for e in events if e["result"] == "written"]
        unknown = [e for e in events if e["result"] == "unknown"]
        failed = [e for e in events if e["result"] == "failed"]
        stored = sql(rsock, "SELECT client_id FROM wp_drill_orders", db="wp").splitlines()
        counts = {}
        for cid in stored:
            counts[cid] = counts.get(cid, 0) + 1
        duplicated = sorted(c for c, n in counts.items() if n > 1)
        missing = sorted(e["id"] for e in written if e["id"] not in counts)
        unknown_landed = [e["id"] for e in unknown if e["id"] in counts]
        on_new = [e for e in written if STANDBY_HOST in e["host"]]
        after = [e["t"] - t0 for e in on_new]
        last_old = max((e["t"] - t0 for e in written if PRIMARY_HOST in e["host"]), default=None)
        summary = {
            "duration_s": args.duration,
            "monitor_poll_interval_s": args.poll_interval,
            "orders_written": len(written),
            "orders_written_on_new_writer": len(on_new),
            "orders_unknown": len(unknown),
            "orders_unknown_that_landed": len(unknown_landed),
            "failed_attempts_not_run": len(failed),
            "failure_codes": sorted({e.get("code", "") for e in failed}),
            "written_missing_on_new_writer": len(missing),
            "missing_sample": missing[:10],
            "duplicated_orders": len(duplicated),
            "duplicated_sample": duplicated[:10],
            "rows_on_new_writer": len(stored),
            "semi_sync_on_0_3s_before_kill": sync_before_kill,
            "kill_s": round(t_kill, 3),
            "promoted_s": round(t_promote, 3),
            "published_s": round(t_publish, 3) if t_publish is not None else None,
            "last_write_on_old_writer_s": round(last_old, 3) if last_old is not None else None,
            "first_write_on_new_writer_s": round(min(after), 3) if after else None,
            "writes_paused_s": round(min(after) - t_kill, 3) if after else None,
            "first_write_after_publish_s": round(min(after) - t_publish, 3) if after and t_publish is not None else None,
            "script_exit_status": script.returncode,
        }
        with open(os.path.join(args.out, "drill-wordpress.json"), "w") as f:
            json.dump(summary, f, indent=2)
        print(json.dumps(summary, indent=2))
        if err.strip():
            print("# the script's stderr:\n" + err[-2000:])
        if args.check:
            # After the publication: up to one second of the host's refresh limit (a refresh
            # just before it returned the old value), one of core's reconnect loop, and the
            # connection itself. Before it, the pause is the promotion's and the monitor's.
            budget = 3.0
            problems = []
            if not sync_before_kill:
                problems.append("replication was not semi-synchronous at the kill")
            if script.returncode != 0:
                problems.append(f"the script exited with {script.returncode}")
            if duplicated:
                problems.append(f"{len(duplicated)} orders were written twice")
            if missing:
                problems.append(f"{len(missing)} orders counted as written are missing on the new writer")
            if not on_new:
                problems.append("no order was written on the new writer after the switch")
            after_publish = summary["first_write_after_publish_s"]
            if after_publish is None or after_publish > budget:
                problems.append(f"the first write on the new writer came {after_publish} s after the publication, over {budget:g} s")
            if len(written) + len(unknown) < 50:
                problems.append(f"only {len(written) + len(unknown)} orders: the loop did not run")
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
        aws.__exit__(None, None, None)
        if os.environ.get("DRILL_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
