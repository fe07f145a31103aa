"""A small in-test stand-in for sensorcontainer's side of the pipe.

It starts ``sensor_wrapper.py`` as a child with one end of a socketpair as
fd 3 (like the real container), answers ``init``, acknowledges ``dispatch``
requests (in batches, like a group commit), records ``log`` / ``ready``
notifications and answers ``kv.*`` with -32601. Unit-level only: the real
container is exercised by the end-to-end tests.

Like the real container it also listens on a Unix socket (in a temp dir,
``SENSOR_RPC_SOCKET``) where processes started without the pipe (re-executed
or child processes) attach with ``SENSOR_RPC_TOKEN``: the first frame must be
``attach`` with the right token (-32040 and close otherwise; close after 5 s
of silence), then the connection is handled like the first one. Every
dispatch records the connection it came on (``dispatch_conns``: 0 is the
socketpair, attached connections count from 1).
"""

import binascii
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRAPPER = os.path.join(PYTHON_DIR, "sensor_wrapper.py")

ACK_RESULT_ID = "01970000-0000-7000-8000-000000000000"  # UUIDv7-sized
ATTACH_REFUSED = -32040
ATTACH_SILENCE_TIMEOUT = 5.0


class Conn(object):
    """One connection to the sensor: the socketpair (id 0) or an attached one."""

    def __init__(self, cid, sock, attached):
        self.id = cid
        self.sock = sock
        self.attached = attached
        self.send_lock = threading.Lock()
        self.initialized = False    # init answered: gets trigger/shutdown notifications
        self.ready = False
        self.eof = False
        self.eof_at = None
        self.dispatch_count = 0
        self.reader = None

    def send_bytes(self, data):
        with self.send_lock:
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                return False


class FakeContainer(object):
    def __init__(self, file_path, class_name, pack="tests", config=None, poll_interval=None,
                 triggers=None, reject=None, hold_acks_until_idle=None, ack_delay=None,
                 python=None, extra_env=None, wrapper_args=None, fast=False,
                 max_frame_bytes=1 << 20, trigger_types=None, no_acks=False,
                 silent_methods=(), use_fd=True, token=None, env_token=None,
                 attach_socket=True):
        """
        :param reject: fn(params) -> None or (code, message, data): error reply
            for a dispatch.
        :param hold_acks_until_idle: seconds; withhold every ack until no
            request arrived for that long, once (to fill the window).
        :param ack_delay: seconds to wait before acknowledging each batch.
        :param fast: skip recording payloads (benchmark mode).
        :param use_fd: give the wrapper the socketpair as fd 3 with
            ``SENSOR_RPC_FD`` (the real container's first process). False:
            start it with only ``SENSOR_RPC_SOCKET``/``SENSOR_RPC_TOKEN`` (an
            attaching process).
        :param token: the token the attach socket accepts (default random).
        :param env_token: the ``SENSOR_RPC_TOKEN`` given to the process
            (default ``token``; set another to test a refusal).
        :param attach_socket: listen on an attach socket at all.
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
        self.use_fd = use_fd
        self.token = token or binascii.hexlify(os.urandom(32)).decode()
        self.env_token = env_token if env_token is not None else self.token
        self.attach_socket = attach_socket
        self.socket_dir = None
        self.socket_path = None
        self._listener = None
        self.conns = []             # every Conn, by id order of arrival
        self.dispatch_conns = []    # connection id of each entry of dispatches
        self.attaches = []          # {"conn", "ok", "token"} per attach attempt
        self.primary = None         # the Conn whose EOF sets self.eof
        self._next_conn_id = 1

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
        self._held = []             # (conn, [ack frames])
        self._holding = bool(hold_acks_until_idle)
        self._sock = None           # the socketpair end (connection 0)

    # ----------------------------------------------------------------- spawn

    def start(self):
        child = None
        to_fd3 = None
        if self.use_fd:
            parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock = parent
            conn = Conn(0, parent, attached=False)
            self.conns.append(conn)
            self.primary = conn
            child_fd = child.fileno()

            def to_fd3():
                # In the child, between fork and exec: the sensor pipe becomes
                # fd 3 (inheritable; every other fd of ours is close-on-exec).
                if child_fd == 3:
                    os.set_inheritable(3, True)
                else:
                    os.dup2(child_fd, 3)

        env = dict(os.environ)
        for name in ("SENSOR_RPC_FD", "SENSOR_RPC_SOCKET", "SENSOR_RPC_TOKEN"):
            env.pop(name, None)
        if self.attach_socket:
            self.socket_dir = tempfile.mkdtemp(prefix="st2shim-fc-")
            self.socket_path = os.path.join(self.socket_dir, "rpc.sock")
            self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listener.bind(self.socket_path)
            self._listener.listen(16)
            env["SENSOR_RPC_SOCKET"] = self.socket_path
            env["SENSOR_RPC_TOKEN"] = self.env_token
            threading.Thread(target=self._accept_loop, daemon=True).start()
        if self.use_fd:
            env["SENSOR_RPC_FD"] = "3"
        env.update({
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
            close_fds=not self.use_fd, preexec_fn=to_fd3, env=env, start_new_session=True)
        if child is not None:
            child.close()
        self._out_threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, "stdout"), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, "stderr"), daemon=True),
        ]
        for t in self._out_threads:
            t.start()
        self._reader = None
        if self.use_fd:
            self._reader = threading.Thread(target=self._read_loop, args=(self.conns[0],),
                                            daemon=True)
            self.conns[0].reader = self._reader
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

    def _conn(self, conn):
        if conn is None:
            return self.primary
        if isinstance(conn, Conn):
            return conn
        with self.lock:
            for c in self.conns:
                if c.id == conn:
                    return c
        raise KeyError("no connection %r" % (conn,))

    def send(self, msg, conn=None):
        """Send ``msg`` on ``conn`` (a Conn or an id; default: the primary one)."""
        c = self._conn(conn)
        if c is None:
            return False
        return c.send_bytes((json.dumps(msg, separators=(",", ":")) + "\n").encode())

    def notify(self, method, params, conn=None):
        return self.send({"jsonrpc": "2.0", "method": method, "params": params}, conn)

    def notify_all(self, method, params):
        """What the real container does with trigger.* and shutdown: send to
        every connection whose init was answered and that is still open."""
        with self.lock:
            targets = [c for c in self.conns if c.initialized and not c.eof]
        for c in targets:
            self.notify(method, params, c)
        return [c.id for c in targets]

    # ----------------------------------------------------------------- attach

    def _accept_loop(self):
        listener = self._listener
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._attach_conn, args=(sock,), daemon=True).start()

    def _attach_conn(self, sock):
        sock.settimeout(ATTACH_SILENCE_TIMEOUT)
        buf = b""
        try:
            while b"\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError:  # socket.timeout included: silence for 5 s
            pass
        line, nl, rest = buf.partition(b"\n")
        msg = None
        if nl:
            try:
                msg = json.loads(line)
            except ValueError:
                msg = None
        ok = (isinstance(msg, dict) and msg.get("method") == "attach"
              and isinstance(msg.get("params"), dict)
              and msg["params"].get("token") == self.token)
        record = {"conn": None, "ok": ok,
                  "token": (msg.get("params") or {}).get("token")
                  if isinstance(msg, dict) and isinstance(msg.get("params"), dict) else None}
        if not ok:
            if nl:
                mid = msg.get("id") if isinstance(msg, dict) else None
                err = {"jsonrpc": "2.0", "id": mid, "error": {
                    "code": ATTACH_REFUSED, "message": "attach refused"}}
                try:
                    sock.sendall((json.dumps(err, separators=(",", ":")) + "\n").encode())
                except OSError:
                    pass
            try:
                sock.close()
            except OSError:
                pass
            with self.lock:
                self.attaches.append(record)
                if self.primary is None:
                    self.eof = True  # the only process could not attach
                    self.eof_at = time.monotonic()
                self.cond.notify_all()
            return
        sock.settimeout(None)
        with self.lock:
            conn = Conn(self._next_conn_id, sock, attached=True)
            self._next_conn_id += 1
            conn.reader = threading.current_thread()
            self.conns.append(conn)
            if self.primary is None:
                self.primary = conn
                self._sock = sock
            record["conn"] = conn.id
            self.attaches.append(record)
            self.cond.notify_all()
        conn.send_bytes(b'{"jsonrpc":"2.0","id":%s,"result":{"attached":true}}\n'
                        % json.dumps(msg.get("id")).encode())
        self._read_loop(conn, rest)

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

    def _read_loop(self, conn, initial=b""):
        sock = conn.sock
        tail = b""
        fast = self.fast
        pending = initial
        while True:
            if pending:
                chunk, pending = pending, b""
            else:
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
                        conn.dispatch_count += 1
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
                        conn.dispatch_count += 1
                        if self.first_dispatch_at is None:
                            self.first_dispatch_at = time.monotonic()
                        if not fast:
                            self.dispatches.append(params)
                            self.dispatch_conns.append(conn.id)
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
                        conn.ready = True
                    self.cond.notify_all()
                if mid is not None and method is not None:
                    self._answer(mid, method, msg.get("params"), conn)
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
                        self._held.append((conn, acks))
                        self._last_rx = time.monotonic()
                        continue
                self._send_acks(acks, conn)
        with self.lock:
            conn.eof = True
            conn.eof_at = time.monotonic()
            if conn is self.primary:
                self.eof = True
                self.eof_at = conn.eof_at
            self.cond.notify_all()

    def _send_acks(self, acks, conn):
        if self.ack_delay:
            time.sleep(self.ack_delay)
        # No longer outstanding once decided: counted before the write, so
        # a dispatch the sensor sends as soon as it reads these acks is never
        # counted on top of them (max_unacked stays exact).
        with self.lock:
            self.unacked -= len(acks)
        if not conn.send_bytes("".join(acks).encode()):
            return
        with self.lock:
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
            by_conn = []   # one write per connection, in order of arrival
            for conn, acks in held:
                if by_conn and by_conn[-1][0] is conn:
                    by_conn[-1][1].extend(acks)
                else:
                    by_conn.append((conn, list(acks)))
            for conn, acks in by_conn:
                self._send_acks(acks, conn)
            return

    def _answer(self, mid, method, params, conn):
        if method in self.silent_methods:
            return
        if method == "init":
            self.send({"jsonrpc": "2.0", "id": mid, "result": self._init_result()}, conn)
            with self.lock:
                conn.initialized = True
                self.cond.notify_all()
        elif method == "log":
            self.send({"jsonrpc": "2.0", "id": mid, "result": True}, conn)
        else:
            self.send({"jsonrpc": "2.0", "id": mid, "error": {
                "code": -32601,
                "message": "method %s is not available in this version of sensorcontainer"
                           % (method,)}}, conn)

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
        primary = self.primary
        reader = primary.reader if primary is not None else None
        if reader is not None and reader is not threading.current_thread():
            reader.join(5)
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
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.sock.close()
            except OSError:
                pass
        if self.socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)

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
