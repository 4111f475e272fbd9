"""A local PostgreSQL that accepts IAM database authentication tokens the
way RDS does: over TLS only, the password handed by PAM (pam_exec) to
`verify` (the standard library's HMAC and SHA-256, not botocore), which accepts it when its SigV4 signature is the one the test's
AWS keys make for this endpoint, this user and the rds-db service, and it
has not expired.

Runs as root. PostgreSQL reads its PAM service from /etc/pam.d: it is started
inside a private mount namespace (`unshare -m`) where a directory of ours is
bound over /etc/pam.d; the machine's own /etc is never written. The server
runs as the `postgres` user (setpriv, which needs no PAM).

    iam_db.py [--mariadb] DIR SIGN_HOST ACCESS_KEY SECRET_KEY

starts it (or MariaDB, whose user `wp_iam` is `IDENTIFIED VIA pam` and
`REQUIRE SSL`) in DIR (created), prints `{"port": N, "pid": P}` once it accepts
connections, and runs until stdin closes (the test's end); then stops it.
`python iam_db.py --verify` is the PAM helper itself.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
HERE = os.path.dirname(os.path.abspath(__file__))


def verify():
    """pam_exec's helper: the token on stdin, the user in PAM_USER.

    Checks the token as RDS does, with the standard library only (it runs
    as the server's user, under /usr/bin/python3): recomputes the SigV4
    signature of `GET https://host:port/?<query without the signature>`
    for the rds-db service with the test's secret key, and checks the
    access key, the endpoint, the user and the expiry.
    """
    with open(os.environ["IAM_DB_CONFIG"]) as f:
        config = json.load(f)
    token = sys.stdin.buffer.read().rstrip(b"\0\n").decode("utf-8", "replace")
    try:
        sys.exit(0 if token_is_valid(token, config, os.environ.get("PAM_USER"), time.time()) else 1)
    except (KeyError, ValueError, IndexError):
        sys.exit(1)


def token_is_valid(token, config, user, now):
    import datetime
    import hashlib
    import hmac
    from urllib.parse import parse_qsl, quote

    authority, _, query = token.partition("/?")
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    params = dict(pairs)
    if len(params) != len(pairs) or pairs[-1][0] != "X-Amz-Signature":
        return False
    signature = params.pop("X-Amz-Signature")
    key_id, day, region, service, terminator = params["X-Amz-Credential"].split("/")
    signed = datetime.datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    expected_authority = f"{config['host']}:{config['port']}"
    if (authority != expected_authority or key_id != config["access_key"] or service != "rds-db"
            or terminator != "aws4_request" or params.get("Action") != "connect"
            or params.get("DBUser") != user or params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256"
            or params["X-Amz-SignedHeaders"] != "host" or day != params["X-Amz-Date"][:8]):
        return False
    if not (signed - 300 <= now <= signed + int(params["X-Amz-Expires"])) or int(params["X-Amz-Expires"]) > 900:
        return False
    enc = lambda v: quote(v, safe="-_.~")  # noqa: E731
    canonical_query = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(params.items()))
    canonical = "\n".join(["GET", "/", canonical_query, f"host:{authority}", "", "host",
                           hashlib.sha256(b"").hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + config["secret_key"]).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.compare_digest(hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest(), signature)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(base, sign_host, access_key, secret_key):
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    port = free_port()
    setup_pam(base, sign_host, port, access_key, secret_key)
    pam = os.path.join(base, "pam.d")
    subprocess.run(["chown", "-R", "postgres:postgres", base], check=True)
    as_pg = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups"]
    subprocess.run(as_pg + [f"{PG_BIN}/initdb", "-D", data, "-U", "postgres", "--auth=trust"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(as_pg + ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-keyout", f"{data}/server.key", "-out", f"{data}/server.crt"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(f"{data}/pg_hba.conf", "w") as f:
        f.write("local all postgres trust\n"
                "hostssl all wp_iam 127.0.0.1/32 pam pamservice=ssmdbiam\n"
                "host all all 127.0.0.1/32 reject\n")
    with open(f"{data}/postgresql.conf", "a") as f:
        f.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nssl = on\n"
                f"unix_socket_directories = '{base}'\n")
    serve(base, pam, f"{' '.join(as_pg)} {PG_BIN}/postgres -D {data}", port, 30, "postgres",
          as_pg + [f"{PG_BIN}/psql", "-h", base, "-p", str(port), "-U", "postgres", "-c", "CREATE USER wp_iam"],
          stdout=open(f"{base}/server.log", "w"))


def start_mariadb(base, sign_host, access_key, secret_key):
    """The same for MariaDB: its PAM plugin (auth_pam, cleartext from the
    client, which mysqlnd sends only over TLS here: the user requires SSL)."""
    os.makedirs(base, exist_ok=True)
    os.chmod(base, 0o755)
    data = os.path.join(base, "data")
    port = free_port()
    setup_pam(base, sign_host, port, access_key, secret_key)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", f"{base}/server.key", "-out", f"{base}/server.crt"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cnf = os.path.join(base, "my.cnf")
    with open(cnf, "w") as f:
        f.write(f"[mysqld]\ndatadir={data}\nsocket={base}/mysqld.sock\nport={port}\nbind-address=127.0.0.1\n"
                f"pid-file={base}/mysqld.pid\nssl-cert={base}/server.crt\nssl-key={base}/server.key\n"
                "plugin-load-add=auth_pam.so\npam-use-cleartext-plugin=ON\nskip-log-bin\n"
                "innodb-buffer-pool-size=16M\nlog-error=" + base + "/server.log\n")
    subprocess.run(["chown", "-R", "mysql:mysql", base], check=True)
    subprocess.run(["mariadb-install-db", f"--defaults-file={cnf}", "--user=mysql", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sql = ("CREATE USER wp_iam@'%' IDENTIFIED VIA pam USING 'ssmdbiam' REQUIRE SSL; "
           "GRANT ALL ON *.* TO wp_iam@'%';")
    serve(base, f"{base}/pam.d", f"mariadbd --defaults-file={cnf} --user=mysql", port, 60, "mariadb",
          ["mariadb", f"--socket={base}/mysqld.sock", "-uroot", "-e", sql], stdout=subprocess.DEVNULL)


def serve(base, pam, server_cmd, port, timeout, what, ready, stdout):
    """Runs SERVER_CMD with PAM's configuration from PAM bound over /etc/pam.d
    in a private mount namespace (the machine's own /etc is never touched),
    until READY (a command that sets the database up) succeeds; then prints
    {"port", "pid"} and serves until stdin closes, and removes BASE."""
    server = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                               f"mount --bind {pam} /etc/pam.d && exec {server_cmd}"],
                              stdout=stdout, stderr=subprocess.STDOUT)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if subprocess.run(ready, capture_output=True).returncode == 0:
            break
        time.sleep(0.2)
    else:
        server.terminate()
        sys.exit(f"{what} did not start: " + open(f"{base}/server.log").read()[-800:])
    print(json.dumps({"port": port, "pid": server.pid}), flush=True)
    sys.stdin.read()
    server.terminate()
    server.wait(20)
    shutil.rmtree(base, ignore_errors=True)


def setup_pam(base, sign_host, port, access_key, secret_key):
    """The PAM service `ssmdbiam` and its verifier, in BASE."""
    config = os.path.join(base, "verify.json")
    with open(config, "w") as f:
        json.dump({"host": sign_host, "port": port, "access_key": access_key, "secret_key": secret_key}, f)
    os.chmod(config, 0o644)
    pam = os.path.join(base, "pam.d")
    os.makedirs(pam, exist_ok=True)
    helper = os.path.join(base, "verify")
    with open(helper, "w") as f:
        f.write(f"#!/bin/sh\nIAM_DB_CONFIG={config} exec /usr/bin/python3 {helper}.py --verify\n")
    os.chmod(helper, 0o755)
    # A copy the server's user can read (this file may be under a private home).
    shutil.copy(os.path.abspath(__file__), helper + ".py")
    with open(os.path.join(pam, "ssmdbiam"), "w") as f:
        f.write(f"auth required pam_exec.so expose_authtok quiet {helper}\naccount required pam_permit.so\n")
    return helper


if __name__ == "__main__":
    if sys.argv[1:] == ["--verify"]:
        verify()
    elif sys.argv[1] == "--mariadb":
        start_mariadb(*sys.argv[2:6])
    else:
        start(*sys.argv[1:5])
