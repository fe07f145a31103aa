#!/usr/bin/env python3
import json
import os
import socket
import time

sock = socket.socket(fileno=int(os.environ["SENSOR_RPC_FD"]))
sock.sendall(b'{"jsonrpc":"2.0","id":1,"method":"init","params":{}}\n')
buf = b""
while b"\n" not in buf:
    buf += sock.recv(65536)
out_dir = json.loads(buf.split(b"\n", 1)[0])["result"]["config"]["out_dir"]
status = open("/proc/self/status").read()
nnp = [l.split(":")[1].strip() for l in status.splitlines() if l.startswith("NoNewPrivs")]
probe = {"env": dict(os.environ), "no_new_privs": nnp[0] if nnp else None, "umask": os.umask(0o022)}
tmp = os.path.join(out_dir, "env_probe.json.tmp")
with open(tmp, "w") as f:
    json.dump(probe, f)
os.rename(tmp, os.path.join(out_dir, "env_probe.json"))
time.sleep(60)
