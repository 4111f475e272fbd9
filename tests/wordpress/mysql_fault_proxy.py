#!/usr/bin/env python3
"""A TCP relay in front of a MySQL server that loses one reply on request, for
tests/wordpress/reconnect.php: a statement carrying the comment
/*drop-reply:TOKEN*/ reaches the server and runs there, and when the server's
answer arrives the relay resets both connections instead of passing it on, so
the client sees the connection lost after its statement was sent. Each TOKEN
does this once, across every relay given the same folder (the statement sent
again, through this relay or another, passes). Nothing else is changed.

Usage: mysql_fault_proxy.py UPSTREAM_PORT TOKEN_FOLDER; prints its port on
stdout and runs until it is stopped (SIGTERM).
"""
import os
import re
import socket
import struct
import sys
import threading

MARK = re.compile(rb"/\*drop-reply:([A-Za-z0-9_-]+)\*/")
TOKENS = sys.argv[2]


def first_time(token):
    """True for the first relay that sees this token (an exclusive create)."""
    try:
        os.close(os.open(os.path.join(TOKENS, token.decode()), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return True
    except FileExistsError:
        return False


def reset(*socks):
    for s in socks:
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            pass


def pipe(client, server):
    def down():  # server -> client
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                data = b""
            if not data:
                reset(client)
                return
            try:
                client.sendall(data)
            except OSError:
                reset(server)
                return

    threading.Thread(target=down, daemon=True).start()
    while True:
        try:
            data = client.recv(65536)
        except OSError:
            data = b""
        if not data:
            reset(server)
            return
        m = MARK.search(data)
        if not (m and first_time(m.group(1))):
            try:
                server.sendall(data)
            except OSError:
                reset(client)
                return
            continue
        # The client goes first, so that no answer can reach it; the statement then goes to
        # the server, and the relay thread resets the server's side when the answer (OK
        # packet, result set or error: the statement has run) arrives and cannot be passed on.
        reset(client)
        try:
            server.sendall(data)
        except OSError:
            reset(server)
        return


def main():
    upstream = int(sys.argv[1])
    listener = socket.create_server(("127.0.0.1", 0))
    print(listener.getsockname()[1], flush=True)

    def accept():
        while True:  # until SIGTERM
            client, _ = listener.accept()
            try:
                server = socket.create_connection(("127.0.0.1", upstream))
            except OSError:
                reset(client)
                continue
            threading.Thread(target=pipe, args=(client, server), daemon=True).start()

    accept()


if __name__ == "__main__":
    main()
