#!/usr/bin/env python3
"""Stops reading the pipe: floods requests, never reads their answers,
ignores SIGTERM. Writes <out_dir>/deaf.flooding once it starts."""
import json
import os
import signal
import socket

signal.signal(signal.SIGTERM, signal.SIG_IGN)
sock = socket.socket(fileno=int(os.environ.get("SENSOR_RPC_FD", "3")))


def send(obj):
    sock.sendall((json.dumps(obj) + "\n").encode())


send({"jsonrpc": "2.0", "id": 1, "method": "init", "params": {}})
buf = b""
while b"\n" not in buf:
    chunk = sock.recv(65536)
    if not chunk:
        raise SystemExit(1)
    buf += chunk
init = json.loads(buf.split(b"\n", 1)[0])
out_dir = init["result"]["config"]["out_dir"]
send({"jsonrpc": "2.0", "method": "ready"})
open(os.path.join(out_dir, "deaf.flooding"), "w").close()
i = 2
while True:
    # Blocks for good once the container stops reading us.
    send({"jsonrpc": "2.0", "id": i, "method": "user.info", "params": {}})
    i += 1
