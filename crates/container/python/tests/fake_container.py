"""A small in-test stand-in for sensorcontainer's side of the pipe.

It starts ``sensor_wrapper.py`` as a child with one end of a socketpair as
fd 3 (like the real container), answers ``init``, acknowledges ``dispatch``
requests (in batches, like a group commit), records ``log`` / ``ready``
notifications and answers ``kv.*`` with -32601. Unit-level only: the real
container is exercised by the end-to-end tests.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = os.path.join(PYTHON_DIR, "sensor_wrapper.py")

ACK_RESULT_ID = "01970000-0000-7000-8000-000000000000"  # UUIDv7-sized


class FakeContainer(object):
    def __init__(self, file_path, class_name, pack="tests", config=None, poll_interval=None,
                 triggers=None, reject=None, hold_acks_until_idle=None, ack_delay=None,
                 python=None, extra_env=None, wrapper_args=None, fast=False,
                 max_frame_bytes=1 << 20, trigger_types=None, no_acks=False,
                 silent_methods=()):
        """
        :param reject: fn(params) -> None or (code, message, data): error reply
            for a dispatch.
        :param hold_acks_until_idle: seconds; withhold every ack until no
            request arrived for that long, once (to fill the window).
        :param ack_delay: seconds to wait before acknowledging each batch.
        :param fast: skip recording payloads (benchmark mode).
        """
        self.file_path = file_path
        self.class_name = class_name
        self.pack = pack
        self.ref = "%s.%s" % (pack, class_name)
        self.config = config if config is not None else {}
        self.poll_interval = poll_interval
        self.triggers = triggers or []
        self.trigger_types = trigger_types or []
        self.reject = reject
        self.hold_acks_until_idle = hold_acks_until_idle
        self.ack_delay = ack_delay
        self.python = python or sys.executable
        self.extra_env = extra_env or {}
        self.wrapper_args = wrapper_args
        self.fast = fast
        self.max_frame_bytes = max_frame_bytes
        self.no_acks = no_acks                  # never acknowledge dispatches
        self.silent_methods = set(silent_methods)  # requests never answered

        self.lock = threading.RLock()  # wait_for() predicates may use the helpers below
        self.cond = threading.Condition(self.lock)
        self.dispatches = []        # params of every dispatch request
        self.dispatch_count = 0
        self.logs = []              # params of every log notification
        self.messages = []          # every non-dispatch message
        self.ready = False
        self.eof = False
        self.unacked = 0
        self.max_unacked = 0
        self.acked = 0
        self.first_dispatch_at = None
        self.last_ack_at = None
        self.eof_at = None
        self.errors = []
        self.proc = None
        self.stdout = b""
        self.stderr = b""
        self._held = []
        self._holding = bool(hold_acks_until_idle)
        self._sock = None
        self._send_lock = threading.Lock()

    # ----------------------------------------------------------------- spawn

    def start(self):
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock = parent
        child_fd = child.fileno()

        def to_fd3():
            # In the child, between fork and exec: the sensor pipe becomes fd 3
            # (inheritable; every other fd of ours is close-on-exec).
            if child_fd == 3:
                os.set_inheritable(3, True)
            else:
                os.dup2(child_fd, 3)

        env = dict(os.environ)
        env.update({
            "SENSOR_RPC_FD": "3",
            "SENSOR_REF": self.ref,
            "SENSOR_PACK": self.pack,
            "SENSOR_CLASS_NAME": self.class_name,
            "PYTHONPATH": PYTHON_DIR,
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        env.update(self.extra_env)
        if self.wrapper_args is not None:
            argv = [self.python, WRAPPER] + list(self.wrapper_args)
        else:
            argv = [self.python, WRAPPER, "--ref", self.ref, "--file", self.file_path,
                    "--class-name", self.class_name]
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            close_fds=False, preexec_fn=to_fd3, env=env, start_new_session=True)
        child.close()
        self._out_threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for t in self._out_threads:
            t.start()
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        if self.hold_acks_until_idle:
            self._holder = threading.Thread(target=self._hold_loop, daemon=True)
            self._holder.start()
        return self

    def _drain(self, stream, name):
        chunks = []
        while True:
            data = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not data:
                break
            chunks.append(data)
            with self.lock:
                setattr(self, name, b"".join(chunks))

    # ------------------------------------------------------------- protocol

    def send(self, msg):
        data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
        with self._send_lock:
            try:
                self._sock.sendall(data)
            except OSError:
                pass

    def notify(self, method, params):
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def _init_result(self):
        return {
            "ref": self.ref,
            "pack": self.pack,
            "class_name": self.class_name,
            "entry_point": self.file_path,
            "poll_interval": self.poll_interval,
            "config": self.config,
            "trigger_types": self.trigger_types,
            "triggers": self.triggers,
            "max_frame_bytes": self.max_frame_bytes,
        }

    def _read_loop(self):
        sock = self._sock
        tail = b""
        fast = self.fast
        while True:
            try:
                chunk = sock.recv(262144)
            except OSError:
                chunk = b""
            if not chunk:
                break
            chunk = tail + chunk
            lines = chunk.split(b"\n")
            tail = lines.pop()
            acks = []
            for line in lines:
                if not line:
                    continue
                if fast and line.startswith(b'{"jsonrpc":"2.0","id":') and b'"method":"dispatch"' in line[:60]:
                    start = 22
                    end = line.index(b",", start)
                    acks.append(('{"jsonrpc":"2.0","id":%s,"result":{"id":"%s"}}\n'
                                 % (line[start:end].decode(), ACK_RESULT_ID)))
                    with self.lock:
                        self.dispatch_count += 1
                        if self.first_dispatch_at is None:
                            self.first_dispatch_at = time.monotonic()
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    self.errors.append(("parse", line))
                    continue
                method = msg.get("method")
                mid = msg.get("id")
                if method == "dispatch":
                    params = msg.get("params") or {}
                    with self.lock:
                        self.dispatch_count += 1
                        if self.first_dispatch_at is None:
                            self.first_dispatch_at = time.monotonic()
                        if not fast:
                            self.dispatches.append(params)
                        self.cond.notify_all()
                    if mid is None:
                        continue
                    err = self.reject(params) if self.reject else None
                    if err:
                        code, message, data = err
                        e = {"code": code, "message": message}
                        if data is not None:
                            e["data"] = data
                        acks.append(json.dumps({"jsonrpc": "2.0", "id": mid, "error": e},
                                               separators=(",", ":")) + "\n")
                    else:
                        acks.append('{"jsonrpc":"2.0","id":%s,"result":{"id":"%s"}}\n'
                                    % (json.dumps(mid), ACK_RESULT_ID))
                    continue
                with self.lock:
                    self.messages.append(msg)
                    if method == "log":
                        self.logs.append(msg.get("params") or {})
                    elif method == "ready":
                        self.ready = True
                    self.cond.notify_all()
                if mid is not None and method is not None:
                    self._answer(mid, method, msg.get("params"))
            if acks and self.no_acks:
                with self.lock:
                    self.unacked += len(acks)
                    self.max_unacked = max(self.max_unacked, self.unacked)
                continue
            if acks:
                with self.lock:
                    self.unacked += len(acks)
                    if self.unacked > self.max_unacked:
                        self.max_unacked = self.unacked
                    if self._holding:
                        self._held.extend(acks)
                        self._last_rx = time.monotonic()
                        continue
                self._send_acks(acks)
        with self.lock:
            self.eof = True
            self.eof_at = time.monotonic()
            self.cond.notify_all()

    def _send_acks(self, acks):
        if self.ack_delay:
            time.sleep(self.ack_delay)
        with self._send_lock:
            try:
                self._sock.sendall("".join(acks).encode())
            except OSError:
                return
        with self.lock:
            self.unacked -= len(acks)
            self.acked += len(acks)
            self.last_ack_at = time.monotonic()
            self.cond.notify_all()

    def _hold_loop(self):
        idle = self.hold_acks_until_idle
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(idle / 4.0)
            with self.lock:
                if not self._held:
                    continue
                if time.monotonic() - self._last_rx < idle:
                    continue
                held = self._held
                self._held = []
                self._holding = False
            self._send_acks(held)
            return

    def _answer(self, mid, method, params):
        if method in self.silent_methods:
            return
        if method == "init":
            self.send({"jsonrpc": "2.0", "id": mid, "result": self._init_result()})
        elif method == "log":
            self.send({"jsonrpc": "2.0", "id": mid, "result": True})
        else:
            self.send({"jsonrpc": "2.0", "id": mid, "error": {
                "code": -32601,
                "message": "method %s is not available in this version of sensorcontainer"
                           % (method,)}})

    # --------------------------------------------------------------- waiting

    def wait_for(self, predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.cond.wait(remaining)
            return True

    def wait_ready(self, timeout=10.0):
        return self.wait_for(lambda: self.ready or self.eof, timeout) and self.ready

    def wait_exit(self, timeout=15.0):
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        for t in self._out_threads:
            t.join(5)
        self._reader.join(5)
        return code

    def terminate(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def close(self):
        """Reap the child no matter what (tests call this in tearDown)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                try:
                    stream.close()
                except Exception:
                    pass
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    @property
    def stderr_text(self):
        with self.lock:
            return self.stderr.decode("utf-8", "replace")

    @property
    def stdout_text(self):
        with self.lock:
            return self.stdout.decode("utf-8", "replace")

    def log_messages(self, level=None):
        with self.lock:
            return [l.get("message", "") for l in self.logs
                    if level is None or l.get("level") == level]
