"""JSON-RPC 2.0 client for the sensor pipe, see PROTOCOL.md.

The pipe is fd ``$SENSOR_RPC_FD`` (the first process of a sensor) or, for a
process started without it (re-executed by a reloader, a child), a
connection to the Unix socket ``$SENSOR_RPC_SOCKET`` attached with
``$SENSOR_RPC_TOKEN`` (``connect_from_env``).

Threads and primitives
----------------------
The wrapper monkey-patches with eventlet before importing this module when
eventlet is installed (as StackStorm does), and many StackStorm sensors call
``eventlet.monkey_patch()`` themselves when they are imported.  That replaces
``threading``, ``_thread``, ``socket``, ``select`` and ``time.sleep`` with
green versions, and eventlet even swaps existing ``RLock`` objects it can
reach for green ones.  Everything in this module therefore uses only real
primitives, captured *when this module is imported*: taken from the modules
themselves when nothing is patched yet, from ``eventlet.patcher.original()``
when the wrapper patched first.  They are ``_thread.allocate_lock`` (plain
locks, which eventlet cannot upgrade in place), ``_thread.start_new_thread``
(real OS threads), ``_thread.get_ident`` (real thread ids, for
``pthread_kill``), the original socket class (its ``sendall``/``recv`` are C
methods of a real blocking socket) and the original ``time.sleep`` and
``time.monotonic``.  No ``threading`` object is used at all.

Writing
-------
Writes are combined: a caller appends its frame to a buffer under one lock;
if nobody is writing, it becomes the writer and sends the buffer, then keeps
sending whatever other threads queued meanwhile.  So an uncontended dispatch
costs one ``send`` and concurrent ones are coalesced into a single write,
with no added latency.  The reader thread never writes itself (a blocked
write there could deadlock against a container that is blocked writing to
us); it hands its rare frames (log notifications) to a small writer thread.

Dispatch
--------
``dispatch`` is pipelined: it sends the request and returns without waiting
for the acknowledgement.  At most ``window`` (1024) dispatches are
unacknowledged at once; beyond that ``dispatch`` blocks until acks arrive.
An error reply (-32010 validation, -32011 unknown trigger, -32602 bad params,
...) is reported as a ``log`` notification at warning, queued before anyone
waiting in ``wait_acks`` is released, plus a line on stderr; ``dispatch``
itself returns None like StackStorm's.  ``wait_acks`` waits (bounded) until
every dispatch has been answered and every queued frame written.

Signals
-------
The wrapper stops a sensor by raising an exception in the main thread from
its SIGTERM handler.  Raised in the middle of a write it could cut a frame in
half or leave a lock held, so when the main thread is inside this module the
handler defers it (``defer_interrupt``) and the public call raises it on its
way out.  Waits with nothing half-done (a full window, a call's response) are
marked interruptible and are interrupted directly.
"""

import itertools
import json
import os
import socket as _socket_module
import sys
import time as _time_module
import threading as _threading_module
import _thread


def _unpatched(name, group, module):
    """``module`` itself, or its unpatched original when eventlet already
    monkey-patched ``group`` (the wrapper patches before importing this
    module when eventlet is installed, as StackStorm does)."""
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None:
        return module
    try:
        if not patcher.is_monkey_patched(group):
            return module
        return patcher.original(name)
    except Exception:  # pragma: no cover - an odd eventlet; keep what we have
        return module


_thread = _unpatched("_thread", "thread", _thread)
_threading_module = _unpatched("threading", "thread", _threading_module)
_time_module = _unpatched("time", "time", _time_module)
_socket_module = _unpatched("socket", "socket", _socket_module)

# --- real primitives, captured before any sensor module can monkey-patch ----
_allocate_lock = _thread.allocate_lock
_start_new_thread = _thread.start_new_thread
_get_ident = _thread.get_ident
_real_sleep = _time_module.sleep
_monotonic = _time_module.monotonic
_RealSocket = _socket_module.socket
_MAIN_IDENT = _threading_module.main_thread().ident

__all__ = [
    "RpcClient",
    "RpcError",
    "ConnectionClosed",
    "connect_from_env",
    "attach",
    "ATTACH_REFUSED",
    "DEFAULT_WINDOW",
    "DEFAULT_MAX_FRAME_BYTES",
    "real_sleep",
    "start_thread",
    "allocate_lock",
    "get_ident",
    "MAIN_THREAD_IDENT",
]

real_sleep = _real_sleep
start_thread = _start_new_thread
allocate_lock = _allocate_lock
get_ident = _get_ident
MAIN_THREAD_IDENT = _MAIN_IDENT

DEFAULT_WINDOW = 1024
DEFAULT_MAX_FRAME_BYTES = 1 << 20

# JSON-RPC error codes (PROTOCOL.md, "Error codes").
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
FRAME_TOO_LARGE = -32001
VALIDATION_FAILED = -32010
UNKNOWN_TRIGGER = -32011
STORAGE_ERROR = -32030
ATTACH_REFUSED = -32040

# Environment of a sensor process (PROTOCOL.md, "Transport" and "Attaching
# more processes").
RPC_FD_ENV = "SENSOR_RPC_FD"
RPC_SOCKET_ENV = "SENSOR_RPC_SOCKET"
RPC_TOKEN_ENV = "SENSOR_RPC_TOKEN"
ATTACH_TIMEOUT = 30.0   # seconds to wait for the answer to ``attach``

_MISSING = object()

# The file name the code objects of this module carry.  The wrapper's signal
# handler uses it to tell whether the main thread was interrupted inside this
# module (mid-write, holding a lock): then the interrupt is deferred until the
# public call returns instead of being raised in the middle of a frame.
_CODE_FILE = (lambda: None).__code__.co_filename

# An exception the signal handler could not raise because the main thread was
# inside this module; raised at the end of the public call, on the main thread.
# [exception or None, delivered (bool)]
_deferred_interrupt = [None, False]


# True while the main thread waits for an answer (a full window, a call's
# response): nothing is half-done then, so an interrupt may be raised there.
_interruptible = [False]


def main_thread_interruptible():
    """True if the main thread is in a wait of this module that is safe to
    interrupt."""
    return _interruptible[0]


def frame_in_runtime(frame, max_depth=200):
    """True if ``frame`` or one of its callers is code of this module."""
    depth = 0
    while frame is not None and depth < max_depth:
        if frame.f_code.co_filename == _CODE_FILE:
            return True
        frame = frame.f_back
        depth += 1
    return False


def defer_interrupt(exc):
    """Remember ``exc`` to raise in the main thread when it leaves this module
    (``None`` clears it)."""
    _deferred_interrupt[0] = exc


def deferred_interrupt_pending():
    return _deferred_interrupt[0] is not None


def deferred_interrupt_delivered():
    """True once a deferred interrupt has been raised in the main thread."""
    return _deferred_interrupt[1]


def _raise_deferred():
    if _get_ident() == _MAIN_IDENT:
        exc = _deferred_interrupt[0]
        if exc is not None:
            _deferred_interrupt[0] = None
            _deferred_interrupt[1] = True
            raise exc


def raise_deferred_interrupt():
    """Raise a deferred interrupt now if one is pending (main thread only)."""
    if _deferred_interrupt[0] is not None:
        _raise_deferred()


class RpcError(Exception):
    """An error response from the container."""

    def __init__(self, code, message, data=None, method=None):
        self.code = code
        self.message = message
        self.data = data
        self.method = method
        text = "%s (code %s)" % (message, code)
        if method:
            text = "%s: %s" % (method, text)
        super(RpcError, self).__init__(text)


class ConnectionClosed(RpcError, ConnectionError):
    """The pipe to the container is closed."""

    def __init__(self, message="the connection to the sensor container is closed", method=None):
        RpcError.__init__(self, None, message, None, method)


def _json_default(obj):
    """Fallback for values json cannot encode.

    StackStorm pickles trigger payloads, so real sensors sometimes dispatch
    datetimes, sets, bytes, ... Convert them to their natural JSON form
    instead of failing the dispatch.
    """
    import datetime
    import decimal
    import enum
    import uuid

    if isinstance(obj, (datetime.datetime, datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, decimal.Decimal):
        if obj.is_finite() and obj == obj.to_integral_value():
            return int(obj)
        return float(obj) if obj.is_finite() else None
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, uuid.UUID):
        return str(obj)
    for attr in ("to_dict", "__json__"):
        fn = getattr(obj, attr, None)
        if callable(fn):
            try:
                return fn()
            except Exception:
                pass
    if isinstance(obj, dict):  # a dict subclass json refused (odd keys)
        return {str(k): v for k, v in obj.items()}
    return str(obj)


def _sanitize(obj, depth=0):
    """Replace non-finite floats (not valid JSON) by None, recursively."""
    if depth > 100:
        return obj
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _sanitize(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_sanitize(v, depth + 1) for v in obj]
    return obj


# One encoder for everything: compact, ASCII (so len(str) == len(bytes)),
# strict about NaN (the container's JSON parser would reject the frame).
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=_json_default
)
_encode = _ENCODER.encode


def encode_message(msg):
    """Encode one message as a frame string (newline included)."""
    try:
        return _encode(msg) + "\n"
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
        return _encode(_sanitize(msg)) + "\n"


class _Call(object):
    __slots__ = ("lock", "result", "error", "method")

    def __init__(self, method):
        self.lock = _allocate_lock()
        self.lock.acquire()
        self.result = None
        self.error = None
        self.method = method


class RpcClient(object):
    """The sensor side of the pipe. Thread-safe; see the module docstring."""

    def __init__(self, sock, window=DEFAULT_WINDOW, max_frame_bytes=DEFAULT_MAX_FRAME_BYTES,
                 stderr=None, initial_data=b"", attached=False):
        """
        :param initial_data: bytes already read from ``sock`` (what followed
            the answer to ``attach``), handled before anything else read.
        :param attached: True if ``sock`` is an attached connection (not the
            process's inherited pipe); informational.
        """
        self._sock = sock
        self._initial_data = bytes(initial_data or b"")
        self.attached = bool(attached)
        self._sendall = sock.sendall
        self._window = int(window)
        self.max_frame_bytes = int(max_frame_bytes)
        self._stderr = stderr
        self._ids = itertools.count(1)

        # Everything below is guarded by self._lock.
        self._lock = _allocate_lock()
        self._pending = {}          # dispatch id -> trigger (for error messages)
        self._calls = {}            # request id -> _Call
        self._out = []              # frames (str) waiting to be written
        self._writing = False       # some thread is the writer
        self._closed = False
        self._window_waiters = []   # locks of threads blocked on a full window
        self._idle_waiters = []     # locks of threads in wait_acks()

        # Hand-off to the writer thread used on behalf of the reader thread.
        self._assist_wake = _allocate_lock()
        self._assist_wake.acquire()

        self._reader_ident = None
        self._started = False

        # Hooks (set by the wrapper). Called on the reader thread; they must
        # not block.
        self.on_notification = None   # fn(method, params)
        self.on_close = None          # fn(reason)

        # Counters (informational).
        self.dispatched = 0
        self.acked = 0
        self.dispatch_errors = 0
        self.dropped = 0
        self.max_inflight = 0

    # ------------------------------------------------------------------ setup

    def start(self):
        """Start the reader thread and the writer-assist thread."""
        if self._started:
            return
        self._started = True
        ready = _allocate_lock()
        ready.acquire()
        _start_new_thread(self._reader_main, (ready,))
        ready.acquire()  # wait until the reader knows its ident
        _start_new_thread(self._assist_main, ())

    @property
    def closed(self):
        return self._closed

    @property
    def inflight(self):
        return len(self._pending)

    @property
    def window(self):
        return self._window

    def is_reader_thread(self):
        return _get_ident() == self._reader_ident

    def _warn(self, text):
        err = self._stderr or sys.stderr
        try:
            err.write("sensor_wrapper: %s\n" % (text,))
            err.flush()
        except Exception:
            pass

    # --------------------------------------------------------------- dispatch

    def dispatch(self, trigger, payload=None, trace_tag=None, trace_context=None):
        """Send a dispatch request and return without waiting for its ack."""
        i = next(self._ids)
        if trace_tag is None and trace_context is None:
            params = {"trigger": trigger, "payload": payload}
        else:
            params = {"trigger": trigger, "payload": payload}
            if trace_tag is not None:
                params["trace_tag"] = trace_tag
            if trace_context is not None:
                params["trace_context"] = trace_context
        try:
            s = _encode({"jsonrpc": "2.0", "id": i, "method": "dispatch", "params": params}) + "\n"
        except ValueError as exc:
            s = self._encode_slow(i, params, exc, trigger)
            if s is None:
                return None
        if len(s) > self.max_frame_bytes:
            self._reject_local(trigger, "the dispatch frame is %d bytes, more than the container's "
                                        "limit of %d bytes (max_frame_bytes); not sent"
                               % (len(s), self.max_frame_bytes))
            return None

        lock = self._lock
        lock.acquire()
        if self._closed:
            lock.release()
            self._drop(trigger)
            return None
        pending = self._pending
        if len(pending) >= self._window:
            # Blocks until acks free a slot; returns with the lock held (or
            # raises with it released).
            if not self._wait_window_locked():
                lock.release()
                self._drop(trigger)
                return None
        pending[i] = trigger
        n = len(pending)
        if n > self.max_inflight:
            self.max_inflight = n
        self.dispatched += 1
        self._out.append(s)
        if self._writing:
            lock.release()
        else:
            self._writing = True
            out = self._out
            self._out = []
            lock.release()
            self._write_out(out)
        if _deferred_interrupt[0] is not None:
            _raise_deferred()
        return None

    def _encode_slow(self, i, params, exc, trigger):
        try:
            return encode_message({"jsonrpc": "2.0", "id": i, "method": "dispatch",
                                   "params": params})
        except Exception as exc2:
            self._reject_local(trigger, "the payload cannot be encoded as JSON: %s" % (exc2,))
            return None

    def _reject_local(self, trigger, reason):
        self.dispatch_errors += 1
        msg = "Dispatch to trigger %s was not sent: %s" % (_trigger_label(trigger), reason)
        self._warn(msg)
        self.log("warning", msg, logger="sensor_wrapper")

    def _drop(self, trigger):
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:
            self._warn("the connection to the sensor container is closed; dispatch to %s dropped "
                       "(%d dropped so far)" % (_trigger_label(trigger), self.dropped))

    def _wait_window_locked(self):
        """Block (lock held on entry and on return) until the window has room.

        Returns False if the connection closed meanwhile.
        """
        lock = self._lock
        while len(self._pending) >= self._window:
            if self._closed:
                return False
            w = _allocate_lock()
            w.acquire()
            self._window_waiters.append(w)
            lock.release()
            main = _get_ident() == _MAIN_IDENT
            try:
                if main:
                    _interruptible[0] = True
                try:
                    w.acquire()
                finally:
                    if main:
                        _interruptible[0] = False
            except BaseException:
                lock.acquire()
                try:
                    self._window_waiters.remove(w)
                except ValueError:
                    pass
                lock.release()
                raise
            lock.acquire()
        return not self._closed

    # ----------------------------------------------------------------- writes

    def _write_out(self, out):
        """Send ``out``, then whatever was queued meanwhile. Caller is the writer."""
        lock = self._lock
        sendall = self._sendall
        try:
            while True:
                if len(out) == 1:
                    data = out[0].encode()
                else:
                    data = "".join(out).encode()
                try:
                    sendall(data)
                except OSError as exc:
                    self._connection_lost("write failed: %s" % (exc,))
                    return
                lock.acquire()
                out = self._out
                if not out:
                    self._writing = False
                    if self._idle_waiters and not self._pending:
                        self._wake_idle_locked()
                    lock.release()
                    return
                self._out = []
                lock.release()
        except BaseException:
            # Unexpected (an interrupt that was not deferred): never leave the
            # writer flag set, or every later frame would stay queued. Frames
            # queued meanwhile go out with the next write.
            self._writing = False
            raise

    def _enqueue(self, s):
        """Queue a frame from any thread but the reader; may write it itself."""
        lock = self._lock
        lock.acquire()
        if self._closed:
            lock.release()
            return False
        self._out.append(s)
        if self._writing:
            lock.release()
        else:
            self._writing = True
            out = self._out
            self._out = []
            lock.release()
            self._write_out(out)
        return True

    def _enqueue_nowait(self, s):
        """Queue a frame without ever blocking on the socket (reader thread)."""
        lock = self._lock
        lock.acquire()
        if self._closed:
            lock.release()
            return False
        self._out.append(s)
        wake = not self._writing
        if wake:
            self._writing = True
        lock.release()
        if wake:
            self._assist_wake.release()
        return True

    def _assist_main(self):
        while True:
            self._assist_wake.acquire()
            if self._closed:
                lock = self._lock
                lock.acquire()
                self._writing = False
                self._out = []
                lock.release()
                return
            lock = self._lock
            lock.acquire()
            out = self._out
            self._out = []
            if not out:
                self._writing = False
                lock.release()
                continue
            lock.release()
            try:
                self._write_out(out)
            except BaseException as exc:  # pragma: no cover - defensive
                self._warn("writer thread error: %r" % (exc,))

    def _send(self, s):
        if self._reader_ident is not None and _get_ident() == self._reader_ident:
            return self._enqueue_nowait(s)
        return self._enqueue(s)

    # ---------------------------------------------------- notifications/calls

    def notify(self, method, params=None):
        """Send a notification. Never blocks when called on the reader thread."""
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        ok = self._send(encode_message(msg))
        if _deferred_interrupt[0] is not None:
            _raise_deferred()
        return ok

    def log(self, level, message, logger=None):
        """Send a ``log`` notification (best effort)."""
        ok = self._send(_log_frame(level, message, logger, self.max_frame_bytes))
        if _deferred_interrupt[0] is not None:
            _raise_deferred()
        return ok

    def call(self, method, params=None, timeout=None):
        """Send a request and wait for its response; returns ``result``.

        Raises RpcError for an error response, ConnectionClosed if the pipe
        closes first, TimeoutError after ``timeout`` seconds. Must not be used
        on the reader thread.
        """
        if self._reader_ident is not None and _get_ident() == self._reader_ident:
            raise RuntimeError("synchronous RPC (%s) is not allowed on the reader thread" % method)
        i = next(self._ids)
        c = _Call(method)
        msg = {"jsonrpc": "2.0", "id": i, "method": method}
        if params is not None:
            msg["params"] = params
        s = encode_message(msg)
        lock = self._lock
        lock.acquire()
        if self._closed:
            lock.release()
            raise ConnectionClosed(method=method)
        self._calls[i] = c
        lock.release()
        if not self._enqueue(s):
            raise ConnectionClosed(method=method)
        main = _get_ident() == _MAIN_IDENT
        try:
            if main:
                _interruptible[0] = True
            try:
                if timeout is None:
                    got = c.lock.acquire()
                else:
                    got = c.lock.acquire(True, max(0.0, float(timeout)))
            finally:
                if main:
                    _interruptible[0] = False
        except BaseException:
            lock.acquire()
            self._calls.pop(i, None)
            lock.release()
            raise
        if not got:
            lock.acquire()
            self._calls.pop(i, None)
            lock.release()
            raise TimeoutError("no response to %s within %ss" % (method, timeout))
        if _deferred_interrupt[0] is not None:
            _raise_deferred()
        if c.error is not None:
            err = c.error
            if isinstance(err, RpcError):
                raise err
            raise RpcError(err.get("code"), err.get("message", "error"), err.get("data"), method)
        return c.result

    # ---------------------------------------------------------- waiting, EOF

    def _wake_idle_locked(self):
        waiters = self._idle_waiters
        self._idle_waiters = []
        for w in waiters:
            w.release()

    def wait_acks(self, timeout):
        """Wait until every dispatch is acknowledged and every queued frame is
        written. Returns True if so, False on timeout (or closed with acks
        still missing)."""
        deadline = _monotonic() + max(0.0, timeout)
        lock = self._lock
        while True:
            lock.acquire()
            if self._closed:
                missing = len(self._pending)
                lock.release()
                return missing == 0
            if not self._pending and not self._writing and not self._out:
                lock.release()
                return True
            w = _allocate_lock()
            w.acquire()
            self._idle_waiters.append(w)
            lock.release()
            remaining = deadline - _monotonic()
            if remaining <= 0 or not w.acquire(True, remaining):
                lock.acquire()
                try:
                    self._idle_waiters.remove(w)
                except ValueError:
                    pass
                ok = not self._pending and not self._writing and not self._out
                lock.release()
                return ok

    def _connection_lost(self, reason):
        lock = self._lock
        lock.acquire()
        if self._closed:
            self._writing = False
            self._out = []
            lock.release()
            return
        self._closed = True
        self._writing = False
        self._out = []
        calls = self._calls
        self._calls = {}
        waiters = self._window_waiters + self._idle_waiters
        self._window_waiters = []
        self._idle_waiters = []
        lost = len(self._pending)
        lock.release()
        for c in calls.values():
            c.error = ConnectionClosed(method=c.method)
            c.lock.release()
        for w in waiters:
            w.release()
        try:
            self._assist_wake.release()
        except RuntimeError:
            pass
        if lost:
            self._warn("connection closed with %d dispatch(es) unacknowledged (%s)" % (lost, reason))
        cb = self.on_close
        if cb is not None:
            try:
                cb(reason)
            except Exception as exc:
                self._warn("on_close hook failed: %r" % (exc,))

    def close(self):
        """Close our end of the pipe (the reader then exits)."""
        try:
            self._sock.shutdown(_socket_module.SHUT_RDWR)
        except OSError:
            pass

    # ----------------------------------------------------------------- reader

    def _reader_main(self, ready):
        self._reader_ident = _get_ident()
        ready.release()
        recv = self._sock.recv
        tail = b""
        if self._initial_data:
            lines = self._initial_data.split(b"\n")
            self._initial_data = b""
            tail = lines.pop()
            try:
                self._process(lines)
            except Exception as exc:  # never let the reader die
                self._warn("error while handling container messages: %r" % (exc,))
        reason = "end of file on the sensor pipe (the container closed it)"
        while True:
            try:
                chunk = recv(262144)
            except InterruptedError:
                continue
            except OSError as exc:
                reason = "read failed: %s" % (exc,)
                break
            if not chunk:
                break
            if tail:
                chunk = tail + chunk
            lines = chunk.split(b"\n")
            tail = lines.pop()
            try:
                self._process(lines)
            except Exception as exc:  # never let the reader die
                self._warn("error while handling container messages: %r" % (exc,))
        self._connection_lost(reason)

    def _process(self, lines):
        loads = json.loads
        responses = []
        notifications = None
        for line in lines:
            if not line:
                continue
            try:
                msg = loads(line)
            except ValueError:
                self._warn("ignoring a line from the container that is not JSON: %r" % (line[:200],))
                continue
            if type(msg) is not dict:
                self._warn("ignoring a message from the container that is not an object")
                continue
            if "method" in msg:
                if notifications is None:
                    notifications = []
                notifications.append(msg)
            else:
                responses.append(msg)

        if responses:
            errors = None
            resolved = None
            orphans = None
            wake_assist = False
            lock = self._lock
            lock.acquire()
            pending = self._pending
            pop = pending.pop
            acked = 0
            for msg in responses:
                mid = msg.get("id")
                t = pop(mid, _MISSING) if mid is not None else _MISSING
                if t is not _MISSING:
                    acked += 1
                    if "error" in msg:
                        if errors is None:
                            errors = []
                        errors.append((t, msg.get("error")))
                    continue
                c = self._calls.pop(mid, None) if mid is not None else None
                if c is not None:
                    if resolved is None:
                        resolved = []
                    resolved.append((c, msg))
                else:
                    if orphans is None:
                        orphans = []
                    orphans.append(msg)
            self.acked += acked
            if errors:
                # The container already logs every rejection at WARNING with
                # the sensor ref and the schema error; the shim adds its view
                # at DEBUG only, so one rejection is one warning line.
                # Queue the lines before waking anyone in wait_acks(), so
                # they are written before the process can exit.
                self.dispatch_errors += len(errors)
                for t, err in errors:
                    text = "Dispatch to trigger %s was rejected by the container: %s" % (
                        _trigger_label(t), _error_text(err))
                    if not self._closed:
                        self._out.append(_log_frame("debug", text, "sensor_wrapper",
                                                    self.max_frame_bytes))
                if self._out and not self._writing and not self._closed:
                    self._writing = True
                    wake_assist = True
            if acked:
                ww = self._window_waiters
                if ww:
                    free = self._window - len(pending)
                    while ww and free > 0:
                        ww.pop(0).release()
                        free -= 1
                if self._idle_waiters and not pending and not self._writing and not self._out:
                    self._wake_idle_locked()
            lock.release()
            if wake_assist:
                self._assist_wake.release()

            if resolved:
                for c, msg in resolved:
                    if "error" in msg:
                        err = msg.get("error") or {}
                        if not isinstance(err, dict):
                            err = {"code": None, "message": str(err)}
                        c.error = err
                    else:
                        c.result = msg.get("result")
                    c.lock.release()
            if orphans:
                for msg in orphans:
                    err = msg.get("error")
                    if err:
                        self._warn("error from the container not tied to a pending request: %s"
                                   % (_error_text(err),))

        if notifications:
            cb = self.on_notification
            for msg in notifications:
                if cb is None:
                    continue
                params = msg.get("params")
                try:
                    cb(msg.get("method"), params if params is not None else {})
                except Exception as exc:
                    self._warn("error handling %r notification: %r" % (msg.get("method"), exc))


def _log_frame(level, message, logger, max_frame_bytes):
    params = {"level": level, "message": message}
    if logger:
        params["logger"] = logger
    msg = {"jsonrpc": "2.0", "method": "log", "params": params}
    try:
        s = encode_message(msg)
    except Exception:
        params["message"] = repr(message)
        s = encode_message(msg)
    if len(s) > max_frame_bytes:
        keep = max(1024, max_frame_bytes // 2)
        params["message"] = params["message"][:keep] + "... [truncated]"
        s = encode_message(msg)
        if len(s) > max_frame_bytes:  # escapes made it longer: drop the text
            params["message"] = "[log message too large for the sensor pipe]"
            s = encode_message(msg)
    return s


def _trigger_label(trigger):
    if isinstance(trigger, dict):
        ref = trigger.get("ref") or trigger.get("type")
        if ref:
            return '"%s"' % (ref,)
        return json.dumps(trigger, default=str)[:200]
    if isinstance(trigger, str):
        return '"%s"' % (trigger,)
    return repr(trigger)[:200]


def _error_text(err):
    if not isinstance(err, dict):
        return str(err)
    text = str(err.get("message", "error"))
    data = err.get("data")
    if isinstance(data, dict):
        reason = data.get("reason")
        path = data.get("path")
        if reason and reason not in text:
            text += ": %s" % (reason,)
        if path not in (None, "", "/") and str(path) not in text:
            text += " (at %s)" % (path,)
    elif data is not None:
        text += " (%s)" % (json.dumps(data, default=str)[:500],)
    code = err.get("code")
    if code is not None:
        text += " [code %s]" % (code,)
    return text


def error_text(err):
    """Human-readable text of a JSON-RPC error object."""
    return _error_text(err)


def trigger_label(trigger):
    """Short quoted name of a dispatch target, for messages."""
    return _trigger_label(trigger)


def _open_fd(raw):
    try:
        fd = int(raw)
    except ValueError:
        raise RuntimeError("%s=%r is not a file descriptor number" % (RPC_FD_ENV, raw))
    try:
        os.fstat(fd)
    except OSError:
        raise RuntimeError(
            "file descriptor %d (%s) is not open: this program must be started by "
            "sensorcontainer, with the sensor pipe as fd %d" % (fd, RPC_FD_ENV, fd))
    try:
        sock = _RealSocket(fileno=fd)
    except OSError as exc:
        raise RuntimeError("file descriptor %d (%s) is not a socket: %s" % (fd, RPC_FD_ENV, exc))
    try:
        sock.setblocking(True)
        os.set_inheritable(sock.fileno(), False)  # keep it out of the sensor's own children
    except OSError:
        pass
    return sock


def attach(path, token, timeout=ATTACH_TIMEOUT):
    """Connect to the sensor's attach socket and attach with ``token``.

    Returns ``(socket, bytes read after the answer)``; the socket is then an
    ordinary sensor connection. Raises RuntimeError with a readable message
    when the socket is missing, nobody listens, the token is refused or no
    answer comes within ``timeout`` seconds.
    """
    where = "%s=%s" % (RPC_SOCKET_ENV, path)
    sock = _RealSocket(_socket_module.AF_UNIX, _socket_module.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except FileNotFoundError:
            raise RuntimeError(
                "cannot attach to the sensor container: the socket %s does not exist (the "
                "sensor was stopped or restarted, or this process was not started by "
                "sensorcontainer)" % (where,))
        except ConnectionRefusedError:
            raise RuntimeError(
                "cannot attach to the sensor container: nobody listens on %s (the sensor was "
                "stopped or restarted)" % (where,))
        except _socket_module.timeout:
            raise RuntimeError("cannot attach to the sensor container: connecting to %s timed "
                               "out after %ss" % (where, timeout))
        except OSError as exc:
            raise RuntimeError("cannot attach to the sensor container: connecting to %s "
                               "failed: %s" % (where, exc))
        frame = encode_message({"jsonrpc": "2.0", "id": 0, "method": "attach",
                                "params": {"token": token}})
        try:
            sock.sendall(frame.encode())
        except OSError as exc:
            raise RuntimeError("cannot attach to the sensor container: sending the attach "
                               "request on %s failed: %s" % (where, exc))
        buf = b""
        while b"\n" not in buf:
            try:
                chunk = sock.recv(65536)
            except _socket_module.timeout:
                raise RuntimeError("cannot attach to the sensor container: no answer to attach "
                                   "on %s within %ss" % (where, timeout))
            except OSError as exc:
                raise RuntimeError("cannot attach to the sensor container: reading the answer "
                                   "to attach on %s failed: %s" % (where, exc))
            if not chunk:
                raise RuntimeError("cannot attach to the sensor container: it closed %s without "
                                   "answering attach" % (where,))
            buf += chunk
            if len(buf) > DEFAULT_MAX_FRAME_BYTES and b"\n" not in buf:
                raise RuntimeError("cannot attach to the sensor container: the answer to "
                                   "attach is not a JSON-RPC line")
        line, _, rest = buf.partition(b"\n")
        try:
            msg = json.loads(line)
        except ValueError:
            raise RuntimeError("cannot attach to the sensor container: the answer to attach is "
                               "not JSON: %r" % (line[:200],))
        if not isinstance(msg, dict):
            raise RuntimeError("cannot attach to the sensor container: unexpected answer to "
                               "attach: %r" % (line[:200],))
        err = msg.get("error")
        if err is not None:
            code = err.get("code") if isinstance(err, dict) else None
            if code == ATTACH_REFUSED:
                raise RuntimeError(
                    "the sensor container refused to attach this process (pid %d) on %s: %s. "
                    "%s must be the token of the sensor's current start; a process left over "
                    "from an earlier start of the sensor cannot attach"
                    % (os.getpid(), where, _error_text(err), RPC_TOKEN_ENV))
            raise RuntimeError("cannot attach to the sensor container on %s: %s"
                               % (where, _error_text(err)))
        result = msg.get("result")
        if msg.get("id") != 0 or not isinstance(result, dict) or result.get("attached") is not True:
            raise RuntimeError("cannot attach to the sensor container: unexpected answer to "
                               "attach: %r" % (line[:200],))
        sock.settimeout(None)
        try:
            os.set_inheritable(sock.fileno(), False)
        except OSError:
            pass
        return sock, rest
    except BaseException:
        try:
            sock.close()
        except OSError:
            pass
        raise


def connect_from_env(env=None, **kwargs):
    """Open this process's connection to the sensor container.

    - ``SENSOR_RPC_FD`` set (the sensor's first process): take that fd and
      remove the variable from ``env``, so children and re-executed images
      of this process do not believe they have the pipe.
    - otherwise ``SENSOR_RPC_SOCKET`` and ``SENSOR_RPC_TOKEN`` set (a process
      re-executed by a reloader, or started by the sensor): connect to the
      socket and ``attach``.

    An fd 3 inherited without ``SENSOR_RPC_FD`` is never used: in a child it
    may be anything. Raises RuntimeError with a readable message.
    """
    env = os.environ if env is None else env
    raw = env.get(RPC_FD_ENV)
    if raw is not None:
        try:
            del env[RPC_FD_ENV]
        except KeyError:
            pass
        return RpcClient(_open_fd(raw), **kwargs)
    path = env.get(RPC_SOCKET_ENV)
    token = env.get(RPC_TOKEN_ENV)
    if path and token:
        sock, rest = attach(path, token)
        return RpcClient(sock, initial_data=rest, attached=True, **kwargs)
    if path or token:
        raise RuntimeError(
            "%s is set but %s is not: cannot attach to the sensor container"
            % ((RPC_SOCKET_ENV, RPC_TOKEN_ENV) if path else (RPC_TOKEN_ENV, RPC_SOCKET_ENV)))
    raise RuntimeError(
        "no sensor pipe: neither %s nor %s/%s is set. This program must be started by "
        "sensorcontainer (which passes the pipe as fd 3 with %s=3), or by a process of a "
        "running sensor" % (RPC_FD_ENV, RPC_SOCKET_ENV, RPC_TOKEN_ENV, RPC_FD_ENV))
