#!/usr/bin/env python3
import json
import os
import socket
import threading
import time

sock = socket.socket(fileno=int(os.environ.get("SENSOR_RPC_FD", "3")))


def drain():
    # Keep reading the container's answers (100k errors) while writing.
    while sock.recv(1 << 20):
        pass


threading.Thread(target=drain, daemon=True).start()
sock.sendall(b"not json\n" * 100000)
forged = {"jsonrpc": "2.0", "method": "log",
          "params": {"level": "info", "message": "hello\n2026-01-01T00:00:00Z ERROR forged line\x1b[31m"}}
sock.sendall((json.dumps(forged) + "\n").encode())
sock.sendall(b'{"jsonrpc":"2.0","method":"dispatch","params":{"trigger":"testpack.garbage_flood_event","payload":{}}}\n')
time.sleep(60)
