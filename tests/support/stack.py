#!/usr/bin/env python3
"""Local AWS for tests: a moto server plus, in front of it, a small proxy that
counts requests and can inject faults moto cannot produce.

Used two ways:
- as a library (``with AwsStack() as aws: aws.ssm.put_parameter(...)``);
- as a command for shell and PHP test runners::

      python3 tests/support/stack.py --env-file /tmp/aws.env

  starts both on free loopback ports, writes ``AWS_*`` settings (and
  ``MOTO_URL``, ``PROXY_URL``) to the file, and runs until SIGTERM/SIGINT.

Proxy control (plain HTTP on the proxy's port, never forwarded to moto):
- ``GET  /__proxy/counts``  -> JSON {"total": n, "by_target": {"AmazonSSM.GetParameter": n,
  "rds.DescribeDBInstances": n, ...}, "by_parameter": {"us-east-1 /app/db": n, ...},
  "by_access_key": {"AKIA...": n}} (see ``FaultProxy.target`` for how calls are named;
  ``by_parameter`` counts SSM GetParameter(s) per region and name, ``by_access_key``
  every request per signing access key id)
- ``POST /__proxy/reset``   -> zero the counters and clear the fault
- ``POST /__proxy/fault``   body JSON {"mode": ..., "delay_ms": n} where mode is one of
  ``none``, ``refuse`` (close the connection at once), ``hang`` (accept, never answer),
  ``slow`` (answer after delay_ms), ``500``, ``throttle`` (400 ThrottlingException; for
  query protocols such as RDS, the XML error with code Throttling),
  ``reset`` (send half the body, then reset), ``garbage`` (200 with a malformed body),
  ``denied`` (400 AccessDeniedException, as IAM answers a policy that does not
  allow one parameter: moto's IAM does not scope policies to resources).
  With ``"target": "rds.DescribeDBInstances"`` (a name as ``counts`` gives it)
  and/or ``"region": "us-east-1"`` (the signature's credential scope), only
  matching requests are faulted and the rest pass: one region's API down, say.
  With ``"for_ms": n`` the fault ends by itself n ms after it was set (a throttle
  window of a failover, say); ``counts`` then says ``"faulted"``: how many
  requests a fault answered or broke, and ``"recent"`` the last 200 requests as
  [unix time, target, fault mode].

``--auth`` (``AwsStack(auth=True)``): moto checks every request's SigV4
signature and IAM policy, as AWS does. The stack creates an IAM user allowed
``ssm:*`` and ``secretsmanager:*`` and hands out its keys instead of
``testing``; a request signed wrongly gets ``SignatureDoesNotMatch``.
"""
import argparse
import collections
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REGION = "us-east-1"
FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


class Moto:
    """A moto server on a free loopback port, in a temporary folder."""

    def __init__(self, unauthenticated_actions=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="moto-")
        env = dict(os.environ, **FAKE_ENV)
        if unauthenticated_actions is not None:
            # moto authenticates every request after the first N.
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(unauthenticated_actions)
        self.log = open(os.path.join(self.dir, "moto.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            cwd=self.dir, env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        wait_http(self.url + "/moto-api/")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class FaultProxy:
    """Forwards HTTP to moto; counts requests; injects one fault mode at a time,
    into every call or, with ``only`` (a list of targets such as
    ``AmazonSSM.DescribeParameters``), into those operations' calls alone."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.counts = {}
        self.by_parameter = {}
        self.by_access_key = {}
        self.total = 0
        self.faulted = 0
        self.recent = collections.deque(maxlen=200)
        self.fault = {"mode": "none"}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status, body, headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _control(self, body):
                if self.path == "/__proxy/counts":
                    with proxy.lock:
                        data = {"total": proxy.total, "faulted": proxy.faulted, "recent": list(proxy.recent),
                                "by_target": dict(proxy.counts),
                                "by_parameter": dict(proxy.by_parameter), "by_access_key": dict(proxy.by_access_key)}
                    return self._send(200, json.dumps(data).encode(), {"Content-Type": "application/json"})
                if self.path == "/__proxy/reset":
                    with proxy.lock:
                        proxy.counts.clear()
                        proxy.by_parameter.clear()
                        proxy.by_access_key.clear()
                        proxy.total = 0
                        proxy.faulted = 0
                        proxy.recent.clear()
                        proxy.fault = {"mode": "none"}
                    return self._send(200, b"{}")
                if self.path == "/__proxy/fault":
                    with proxy.lock:
                        proxy.fault = json.loads(body or b"{}")
                        if "for_ms" in proxy.fault:
                            proxy.fault["until"] = time.monotonic() + proxy.fault["for_ms"] / 1000
                    return self._send(200, b"{}")
                return self._send(404, b"unknown control path")

            def _hard_close(self):
                # SO_LINGER 0: the peer sees a reset, not an orderly close.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/__proxy/"):
                    return self._control(body)
                target = proxy.target(self.command, self.path, self.headers, body)
                scope = (self.headers.get("Authorization") or "").split("Credential=")[-1].split(",")[0].split("/")
                with proxy.lock:
                    proxy.total += 1
                    proxy.counts[target] = proxy.counts.get(target, 0) + 1
                    if len(scope) >= 5:
                        proxy.by_access_key[scope[0]] = proxy.by_access_key.get(scope[0], 0) + 1
                    for name in proxy.parameter_names(target, body):
                        key = f"{scope[2] if len(scope) >= 5 else '?'} {name}"
                        proxy.by_parameter[key] = proxy.by_parameter.get(key, 0) + 1
                    fault = dict(proxy.fault)
                    if "until" in fault and time.monotonic() >= fault["until"]:
                        fault = proxy.fault = {"mode": "none"}
                    region = scope[2] if len(scope) >= 5 else None
                    if (
                        (fault.get("only") and target not in fault["only"])
                        or fault.get("target", target) != target
                        or fault.get("region", region) != region
                    ):
                        # A fault for some operations (a missing IAM
                        # permission) or one region (its API down): every
                        # other call passes untouched.
                        fault = {"mode": "none"}
                    if fault.get("mode", "none") != "none":
                        proxy.faulted += 1
                    proxy.recent.append([round(time.time(), 3), target, fault.get("mode", "none")])
                mode = fault.get("mode", "none")
                if mode == "refuse":
                    return self._hard_close()
                if mode == "hang":
                    time.sleep(fault.get("delay_ms", 30000) / 1000)
                    return self._hard_close()
                if mode in ("500", "throttle", "denied"):
                    status, code, message = {"500": (500, "InternalServerError", "injected"),
                                             "throttle": (400, "ThrottlingException", "Rate exceeded"),
                                             "denied": (400, "AccessDeniedException", "injected denial")}[mode]
                    if "X-Amz-Target" not in self.headers and \
                            (self.headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
                        # Query protocols (RDS, CloudWatch) answer in XML, with RDS's code for throttling.
                        code = "Throttling" if mode == "throttle" else code
                        xml = (f"<ErrorResponse><Error><Type>{'Sender' if status == 400 else 'Receiver'}</Type>"
                               f"<Code>{code}</Code><Message>{message}</Message></Error>"
                               "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>")
                        return self._send(status, xml.encode(), {"Content-Type": "text/xml"})
                    return self._send(status, json.dumps({"__type": code, "message": message}).encode(),
                                      {"Content-Type": "application/x-amz-json-1.1"})
                if mode == "garbage":
                    return self._send(200, b'{"Parameter": {"Value": ', {"Content-Type": "application/x-amz-json-1.1"})
                if mode == "slow":
                    time.sleep(fault.get("delay_ms", 1000) / 1000)
                req = urllib.request.Request(proxy.upstream + self.path, data=body if self.command != "GET" else None,
                                             method=self.command)
                for k, v in self.headers.items():
                    # Host passes as the client sent it: it is signed, and
                    # moto checks signatures in --auth mode.
                    if k.lower() not in ("content-length", "connection"):
                        req.add_header(k, v)
                try:
                    resp = urllib.request.urlopen(req, timeout=30)
                    status, rbody, rheaders = resp.status, resp.read(), resp.headers
                except urllib.error.HTTPError as e:
                    status, rbody, rheaders = e.code, e.read(), e.headers
                headers = {k: v for k, v in rheaders.items()
                           if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date")}
                if mode == "reset":
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(rbody)))
                    self.end_headers()
                    self.wfile.write(rbody[: len(rbody) // 2])
                    self.wfile.flush()
                    return self._hard_close()
                return self._send(status, rbody, headers)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def parameter_names(target, body):
        """The parameter names a GetParameter(s) request asks for."""
        if target not in ("AmazonSSM.GetParameter", "AmazonSSM.GetParameters"):
            return []
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return []
        return [doc["Name"]] if "Name" in doc else list(doc.get("Names", []))

    @staticmethod
    def target(command, path, headers, body):
        """The operation a request calls, for the counters: the X-Amz-Target of
        JSON protocols (``AmazonSSM.PutParameter``), ``service.Action`` for query
        protocols such as RDS (``rds.PromoteReadReplica``, the service taken from
        the signature's credential scope), ``Service.Operation`` for RPC v2 CBOR
        (CloudWatch), else the method and path."""
        if "X-Amz-Target" in headers:
            return headers["X-Amz-Target"]
        clean = path.split("?")[0]
        parts = clean.strip("/").split("/")
        if len(parts) == 4 and parts[0] == "service" and parts[2] == "operation":
            return f"{parts[1]}.{parts[3]}"
        if (headers.get("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            from urllib.parse import parse_qs
            action = parse_qs(body.decode("utf-8", "replace")).get("Action", [None])[0]
            scope = (headers.get("Authorization") or "").split("Credential=")[-1].split(",")[0].split("/")
            if action:
                return f"{scope[3]}.{action}" if len(scope) >= 5 else action
        return command + " " + clean

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class AwsStack:
    """moto + proxy, with boto3 clients that talk to moto directly (uncounted)."""

    # What the stack's own setup sends before moto checks signatures: three
    # IAM calls to make the user (see --auth).
    SETUP_ACTIONS = 3

    def __init__(self, auth=False):
        self.auth = auth
        self.keys = (FAKE_ENV["AWS_ACCESS_KEY_ID"], FAKE_ENV["AWS_SECRET_ACCESS_KEY"])

    def __enter__(self):
        self.moto = Moto(self.SETUP_ACTIONS if self.auth else None)
        self.proxy = FaultProxy(self.moto.url)
        if self.auth:
            iam = self.client("iam")
            iam.create_user(UserName="ssm-db-config-tests")
            key = iam.create_access_key(UserName="ssm-db-config-tests")["AccessKey"]
            policy = {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["ssm:*", "secretsmanager:*", "kms:*"], "Resource": "*"}]}
            iam.put_user_policy(UserName="ssm-db-config-tests", PolicyName="tests", PolicyDocument=json.dumps(policy))
            self.keys = (key["AccessKeyId"], key["SecretAccessKey"])
        # moto builds a service's backend at its first request (for SSM, with
        # AWS's public parameters): over a second, more on a busy machine,
        # which a test's first fetch with a 2 s budget must not pay.
        for service, warm in (("ssm", lambda c: c.describe_parameters(MaxResults=1)),
                              ("secretsmanager", lambda c: c.list_secrets(MaxResults=1))):
            warm(self.client(service))
        return self

    def __exit__(self, *exc):
        self.proxy.stop()
        self.moto.stop()

    def client(self, service):
        import boto3
        return boto3.client(service, endpoint_url=self.moto.url, region_name=REGION,
                            aws_access_key_id=self.keys[0], aws_secret_access_key=self.keys[1])

    def env(self):
        """Settings for a process that should reach AWS through the proxy."""
        return dict(FAKE_ENV, AWS_ENDPOINT_URL=self.proxy.url, MOTO_URL=self.moto.url, PROXY_URL=self.proxy.url,
                    AWS_ACCESS_KEY_ID=self.keys[0], AWS_SECRET_ACCESS_KEY=self.keys[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env-file", required=True, help="where to write the AWS_* settings (shell syntax)")
    ap.add_argument("--auth", action="store_true", help="moto checks signatures and IAM policies (see above)")
    args = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    with AwsStack(auth=args.auth) as aws:
        tmp = args.env_file + ".tmp"
        with open(tmp, "w") as f:
            for k, v in aws.env().items():
                f.write(f"export {k}={v}\n")
        os.replace(tmp, args.env_file)
        stop.wait()


if __name__ == "__main__":
    main()
