#!/usr/bin/env python3
"""Forks a setsid grandchild that keeps fd 3 and dispatches every 20 ms,
writes its pid to <out_dir>/orphan.pid, then exits 0."""
import json
import os
import socket
import sys
import time

fd = int(os.environ.get("SENSOR_RPC_FD", "3"))
sock = socket.socket(fileno=fd)
sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"init","params":{}}\n')
buf = b""
while b"\n" not in buf:
    buf += sock.recv(65536)
out_dir = json.loads(buf.split(b"\n", 1)[0])["result"]["config"]["out_dir"]
sock.sendall(b'{"jsonrpc":"2.0","method":"ready"}\n')
sock.sendall(b'{"jsonrpc":"2.0","method":"dispatch","params":{"trigger":"testpack.orphan_event","payload":{"from":"parent"}}}\n')

pid = os.fork()
if pid == 0:
    os.setsid()
    n = 0
    while True:
        n += 1
        frame = {"jsonrpc": "2.0", "method": "dispatch",
                 "params": {"trigger": "testpack.orphan_event", "payload": {"from": "orphan", "n": n}}}
        try:
            os.write(fd, (json.dumps(frame) + "\n").encode())
        except OSError:
            pass
        time.sleep(0.02)
tmp = os.path.join(out_dir, "orphan.pid.tmp")
with open(tmp, "w") as f:
    f.write(str(pid))
os.rename(tmp, os.path.join(out_dir, "orphan.pid"))
time.sleep(0.3)  # let the orphan dispatch a few while we still run
sys.exit(0)
