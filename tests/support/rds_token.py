"""What boto3's `rds.generate_db_auth_token` makes, at a frozen signing time.

Reads a JSON list of cases on stdin, each
`{"access_key", "secret_key", "session_token" (or null), "host", "port",
"user", "region", "time"}` (`time` in Unix seconds), and prints a JSON list
of tokens in the same order. botocore takes its clock from
`botocore.auth.get_current_datetime`; it is replaced for each case, so the
token is the one boto3 would have made at that second. No network call:
the token is made locally, as on a real host.

With `--verify` it instead reads `{"token", "access_key", "secret_key",
"now"}` objects and prints, for each, whether the token's signature is the
one those credentials make for its own host, user, region and time, and
whether it is unexpired at `now` (what RDS checks).
"""

import datetime
import json
import sys
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.auth


def token(case):
    session = boto3.session.Session(
        aws_access_key_id=case["access_key"],
        aws_secret_access_key=case["secret_key"],
        aws_session_token=case.get("session_token"),
        region_name=case["region"],
    )
    client = session.client("rds")
    at = datetime.datetime.fromtimestamp(case["time"], tz=datetime.timezone.utc)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
        return client.generate_db_auth_token(
            DBHostname=case["host"],
            Port=case["port"],
            DBUsername=case["user"],
            Region=case["region"],
        )


def verify(case):
    """Recomputes the token from what it names and compares."""
    parts = urlsplit("https://" + case["token"])
    query = parse_qs(parts.query, keep_blank_values=True)
    one = {k: v[0] for k, v in query.items()}
    credential = one["X-Amz-Credential"].split("/")
    signed = datetime.datetime.strptime(one["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    host = parts.hostname if ":" not in (parts.hostname or "") else "[" + parts.hostname + "]"
    again = token(
        {
            "access_key": case["access_key"],
            "secret_key": case["secret_key"],
            "session_token": one.get("X-Amz-Security-Token"),
            "host": host,
            "port": parts.port,
            "user": one["DBUser"],
            "region": credential[2],
            "time": signed.timestamp(),
        }
    )
    age = case["now"] - signed.timestamp()
    return {
        "signature_ok": again == case["token"] and credential[0] == case["access_key"],
        "unexpired": 0 <= age <= int(one["X-Amz-Expires"]),
        "user": one["DBUser"],
        "host": parts.hostname,
        "port": parts.port,
        "region": credential[2],
        "service": credential[3],
        "time": signed.timestamp(),
    }


def main():
    cases = json.load(sys.stdin)
    fn = verify if sys.argv[1:] == ["--verify"] else token
    json.dump([fn(c) for c in cases], sys.stdout)


if __name__ == "__main__":
    main()
