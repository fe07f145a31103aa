#!/usr/bin/env python3
"""A sensor written from crates/protocol/PROTOCOL.md alone: no st2reactor,
no SDK, just a socket on $SENSOR_RPC_FD speaking newline-delimited
JSON-RPC 2.0.

It exercises init, pipelined dispatch (requests and a notification),
dispatch errors, kv.set/get/delete/list, log, user.info, a garbage line,
ready, live trigger.add/update/remove and shutdown, and writes what it saw to
<out_dir>/raw_protocol.json, <out_dir>/raw_protocol.triggers.json (after a
trigger.remove) and <out_dir>/raw_protocol.shutdown.json (once told to
stop). The end-to-end test (tests/sdk.rs) checks them against the database.
"""

import json
import os
import signal
import socket
import sys
import time

TRIGGER = "testpack.raw_event"
DISPATCHES = 100


class Pipe:
    """The sensor side of the pipe: requests by id, notifications in order."""

    def __init__(self):
        fd = int(os.environ["SENSOR_RPC_FD"])
        self.sock = socket.socket(fileno=fd)
        self.sock.settimeout(0.2)
        self.buf = b""
        self.next_id = 1
        self.responses = {}        # id -> response object
        self.null_id_errors = []   # errors for frames the container could not attribute
        self.notifications = []    # (method, params) from the container
        self.shutdown = None       # the shutdown notification's params
        self.eof = False

    def send_frames(self, messages):
        # One write for many frames: pipelining.
        data = b"".join(json.dumps(m, separators=(",", ":")).encode() + b"\n" for m in messages)
        self.sock.sendall(data)

    def request(self, method, params):
        i = self.next_id
        self.next_id += 1
        return i, {"jsonrpc": "2.0", "id": i, "method": method, "params": params}

    def call(self, method, params=None, timeout=10.0):
        i, msg = self.request(method, {} if params is None else params)
        self.send_frames([msg])
        return self.wait_for(i, timeout)

    def wait_for(self, i, timeout=10.0):
        deadline = time.monotonic() + timeout
        while i not in self.responses:
            if self.eof:
                raise RuntimeError("EOF while waiting for the answer to %s" % i)
            if time.monotonic() > deadline:
                raise RuntimeError("no answer to request %s" % i)
            self.pump()
        return self.responses.pop(i)

    def pump(self):
        """Read whatever is available (up to 0.2 s) and sort it."""
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        except InterruptedError:
            return
        if not chunk:
            self.eof = True
            return
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            if not line.strip():
                continue
            msg = json.loads(line)
            if "method" in msg:
                if msg["method"] == "shutdown":
                    self.shutdown = msg.get("params", {})
                self.notifications.append((msg["method"], msg.get("params")))
            elif msg.get("id") is None:
                self.null_id_errors.append(msg.get("error"))
            else:
                self.responses[msg["id"]] = msg


def result_or_code(resp):
    if "error" in resp:
        return {"code": resp["error"]["code"], "data": resp["error"].get("data")}
    return {"result": resp["result"]}


def main():
    sigterm = []
    signal.signal(signal.SIGTERM, lambda *_: sigterm.append(time.monotonic()))

    out = {"pid": os.getpid(), "env": {k: os.environ.get(k) for k in
           ("SENSOR_RPC_FD", "SENSOR_REF", "SENSOR_PACK", "SENSOR_CLASS_NAME")}}
    pipe = Pipe()

    # 1. init
    init = pipe.call("init")["result"]
    out["init"] = init
    out_dir = init["config"]["out_dir"]
    max_frame = init["max_frame_bytes"]
    # "triggers" holds every existing trigger of our types: the shadow
    # trigger of testpack.raw_event. Handle it like a trigger.add.
    out["triggers_added"] = [t["ref"] for t in init["triggers"]]
    shadow = next(t for t in init["triggers"] if t["type"] == TRIGGER)

    # 2. ready, once our set-up is done
    pipe.send_frames([{"jsonrpc": "2.0", "method": "ready"}])

    # 3. pipelined dispatch: all requests in one write, then the answers
    frames, ids = [], []
    for n in range(DISPATCHES):
        i, msg = pipe.request("dispatch", {"trigger": TRIGGER, "payload": {"n": n}})
        ids.append(i)
        frames.append(msg)
    i_obj, msg = pipe.request("dispatch", {"trigger": shadow, "payload": {"n": 1000},
                                           "trace_tag": "raw-trace"})
    frames.append(msg)
    frames.append({"jsonrpc": "2.0", "method": "dispatch",   # a notification: no answer
                   "params": {"trigger": TRIGGER, "payload": {"n": 2000}}})
    i_invalid, msg = pipe.request("dispatch", {"trigger": TRIGGER, "payload": {"n": "x"}})
    frames.append(msg)
    i_unknown, msg = pipe.request("dispatch", {"trigger": "testpack.nope", "payload": {}})
    frames.append(msg)
    for f in frames:
        assert len(json.dumps(f, separators=(",", ":"))) <= max_frame
    pipe.send_frames(frames)
    acks = [pipe.wait_for(i) for i in ids]
    out["acks"] = [a["result"]["id"] for a in acks if "result" in a]
    out["ack_errors"] = [a["error"] for a in acks if "error" in a]
    out["object_dispatch"] = result_or_code(pipe.wait_for(i_obj))
    out["invalid_dispatch"] = result_or_code(pipe.wait_for(i_invalid))
    out["unknown_dispatch"] = result_or_code(pipe.wait_for(i_unknown))

    # 4. the datastore
    prefix = "%s.%s:" % (init["pack"], init["class_name"])
    kv = {}
    kv["set_local"] = result_or_code(pipe.call("kv.set", {"name": "checkpoint", "value": "101", "local": True}))
    kv["get_local"] = result_or_code(pipe.call("kv.get", {"name": "checkpoint", "local": True}))
    kv["set_full"] = result_or_code(pipe.call("kv.set", {"name": prefix + "other", "value": "x", "ttl": 3600}))
    kv["get_full"] = result_or_code(pipe.call("kv.get", {"name": prefix + "other"}))
    kv["list_prefix"] = result_or_code(pipe.call("kv.list", {"prefix": prefix}))
    kv["list_local"] = result_or_code(pipe.call("kv.list", {"prefix": "", "local": True, "limit": 1}))
    kv["delete"] = result_or_code(pipe.call("kv.delete", {"name": "other", "local": True}))
    kv["delete_again"] = result_or_code(pipe.call("kv.delete", {"name": "other", "local": True}))
    kv["get_deleted"] = result_or_code(pipe.call("kv.get", {"name": prefix + "other"}))
    kv["set_not_string"] = result_or_code(pipe.call("kv.set", {"name": "bad", "value": 5}))
    kv["user_scope"] = result_or_code(pipe.call("kv.get", {"name": "x", "scope": "user"}))
    out["kv"] = kv

    # 5. log (notification and request), user.info, and a garbage line
    pipe.send_frames([{"jsonrpc": "2.0", "method": "log",
                       "params": {"level": "warning", "message": "raw protocol sensor says hi",
                                  "logger": "raw"}}])
    out["log_request"] = result_or_code(pipe.call("log", {"level": "info", "message": "logged by request"}))
    out["user_info"] = pipe.call("user.info")["result"]
    pipe.sock.sendall(b"this is not json\n")
    out["after_garbage"] = result_or_code(pipe.call("kv.get", {"name": "checkpoint", "local": True}))
    out["null_id_errors"] = pipe.null_id_errors
    out["unknown_method"] = result_or_code(pipe.call("no.such.method"))

    write_json(os.path.join(out_dir, "raw_protocol.json"), out)

    # 6. run until told to stop. Triggers created, updated and deleted while
    # we run arrive as notifications; dispatch to a new one at once.
    deadline = None
    seen = 0
    live = []
    while pipe.shutdown is None and not pipe.eof:
        pipe.pump()
        for method, params in pipe.notifications[seen:]:
            seen += 1
            if not method.startswith("trigger."):
                continue
            t = params["trigger"]
            entry = {"method": method, "ref": t["ref"], "type": t["type"],
                     "parameters": t["parameters"]}
            if method == "trigger.add":
                entry["dispatch"] = result_or_code(pipe.call("dispatch", {
                    "trigger": t, "payload": {"n": 3000, "target": t["parameters"]["target"]}}))
            live.append(entry)
            if method == "trigger.remove":
                write_json(os.path.join(out_dir, "raw_protocol.triggers.json"), live)
        if sigterm and deadline is None:
            deadline = time.monotonic() + 2.0   # the shutdown notification is on its way
        if deadline is not None and time.monotonic() > deadline:
            break
    write_json(os.path.join(out_dir, "raw_protocol.shutdown.json"), {
        "shutdown": pipe.shutdown,
        "sigterm": bool(sigterm),
        "eof": pipe.eof,
        "notifications": [m for m, _ in pipe.notifications],
        "triggers_added": [p["trigger"]["ref"] for m, p in pipe.notifications if m == "trigger.add"],
    })
    return 0


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.rename(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
