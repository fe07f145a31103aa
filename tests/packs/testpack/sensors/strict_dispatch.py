#!/usr/bin/env python3
import json
import os
import socket
import time

sock = socket.socket(fileno=int(os.environ["SENSOR_RPC_FD"]))
f = sock.makefile("rb")


def call(i, params):
    sock.sendall((json.dumps({"jsonrpc": "2.0", "id": i, "method": "dispatch", "params": params}) + "\n").encode())
    while True:
        msg = json.loads(f.readline())
        if msg.get("id") == i:
            return msg


sock.sendall(b'{"jsonrpc":"2.0","id":0,"method":"init","params":{}}\n')
init = json.loads(f.readline())
out_dir = init["result"]["config"]["out_dir"]
answers = {
    "positional": call(1, ["testpack.strict_event", {}]),
    "unknown_field": call(2, {"trigger": "testpack.strict_event", "payload": {}, "urgent": True}),
    "bad_trace_context": call(3, {"trigger": "testpack.strict_event", "payload": {}, "trace_context": "x"}),
    "core_trigger": call(4, {"trigger": "core.st2.key_value_pair.create", "payload": {"object": {}}}),
    "good": call(5, {"trigger": "testpack.strict_event", "payload": {}}),
    "big_integer": call(6, {"trigger": "testpack.strict_event", "payload": {"n": 123456789012345678901234567890}}),
    "max_u64": call(7, {"trigger": "testpack.strict_event", "payload": {"n": 18446744073709551615, "m": -9223372036854775808}}),
}
tmp = os.path.join(out_dir, "strict_dispatch.json.tmp")
with open(tmp, "w") as out:
    json.dump(answers, out)
os.rename(tmp, os.path.join(out_dir, "strict_dispatch.json"))
time.sleep(60)
