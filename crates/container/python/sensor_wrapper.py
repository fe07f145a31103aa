#!/usr/bin/env python3
"""Run one StackStorm-style Python sensor under sensorcontainer.

    python3 sensor_wrapper.py --ref pack.Class --file /abs/entry.py --class-name Class
                              [--pack pack] [--poll-interval N]

The sensor pipe is the Unix socket on fd ``$SENSOR_RPC_FD`` (the first
process of the sensor) or, in a process started without it (re-executed by a
reloader such as Werkzeug's, or started by the sensor), a connection to the
Unix socket ``$SENSOR_RPC_SOCKET`` attached with ``$SENSOR_RPC_TOKEN``; see
crates/protocol/PROTOCOL.md. The first process removes ``SENSOR_RPC_FD`` from
its environment as soon as it has the fd, so its children attach instead.
Every argument is optional when the container answers ``init`` (``ref``,
``pack``, ``class_name``, ``entry_point``, ``poll_interval``); explicit
arguments win.

Before anything else, when eventlet is importable and ``SENSOR_EVENTLET`` is
not ``0``, the wrapper monkey-patches like StackStorm's sensor wrapper (see
st2reactor/container/eventlet_patch.py), so the sensor module is imported
patched. The wrapper's own threads, locks, sockets and sleeps stay real.

Lifecycle: ``init`` -> load the class from the file -> construct it ->
``add_trigger`` for every existing trigger -> ``setup()`` -> ``ready`` ->
``run()``. ``run()`` returning exits 0; an exception anywhere exits 1 (the
traceback goes to stderr, a summary to the container log). SIGTERM, SIGINT, a
``shutdown`` notification or EOF on the pipe run ``cleanup()`` once and exit
0. Every exit waits (bounded) for the acknowledgements of the dispatches
already sent.

Environment (all optional): SENSOR_RPC_FD, SENSOR_RPC_SOCKET,
SENSOR_RPC_TOKEN, SENSOR_EVENTLET (``0`` disables the monkey-patching),
SENSOR_REF, SENSOR_PACK, SENSOR_CLASS_NAME, SENSOR_LOG_LEVEL (default INFO),
SENSOR_STOP_TIMEOUT (seconds from a stop request to a forced exit, default
4.0; the container's grace period is 5 s), SENSOR_ACK_TIMEOUT (seconds to
wait for outstanding acknowledgements on a normal exit, default 10).
"""

import os
import sys

_os_read = os.read      # eventlet's monkey_patch(os=True) replaces these
_os_write = os.write

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# First of all, as StackStorm's sensor wrapper does: monkey-patch with
# eventlet (when it is importable and not disabled), so the sensor module and
# everything it imports bind the green primitives.
from st2reactor.container import eventlet_patch  # noqa: E402

if __name__ == "__main__":
    eventlet_patch.patch_from_env()

# Then the RPC module captures the real thread/lock/socket/sleep primitives
# (the originals when patching came first, see rpc.py).
from st2reactor.container import rpc  # noqa: E402

import argparse  # noqa: E402
import collections  # noqa: E402
import importlib.machinery  # noqa: E402
import importlib.util  # noqa: E402
import inspect  # noqa: E402
import logging  # noqa: E402
import re  # noqa: E402
import signal  # noqa: E402
import traceback  # noqa: E402

from st2reactor.container.sensor_service import (  # noqa: E402
    LOGGER_NAME_PREFIX,
    RpcLogHandler,
    SensorService,
)
from st2reactor.sensor.base import PollingSensor, Sensor  # noqa: E402

_pthread_kill = signal.pthread_kill
_os_exit = os._exit
_monotonic = rpc._monotonic

WRAPPER_LOGGER = "sensor_wrapper"
# The sensor module is registered as "_st2sensor_<pack>_<file stem>": unique,
# so it cannot shadow a library of the same name as the file.
MODULE_NAME_PREFIX = "_st2sensor_"
INIT_TIMEOUT = 60.0
TRIGGER_METHODS = {"add": "add_trigger", "update": "update_trigger", "remove": "remove_trigger"}


def _env_float(name, default):
    try:
        value = float(os.environ.get(name, ""))
        return value if value > 0 else default
    except ValueError:
        return default


class SensorShutdown(SystemExit):
    """Raised in the main thread when the sensor is asked to stop (SIGTERM,
    SIGINT, a ``shutdown`` notification, EOF on the pipe). A SystemExit, so a
    sensor's ``except Exception`` does not swallow it."""

    def __init__(self, reason):
        SystemExit.__init__(self, 0)
        self.reason = reason

    def __str__(self):
        return "sensor stop requested: %s" % (self.reason,)


class SensorLoadError(Exception):
    pass


class _Queue(object):
    """A one-consumer queue built on real locks (safe after monkey-patching).

    The consumer is either a thread blocked in ``get()`` or, for eventlet
    sensors, a green thread woken through a pipe (``set_wake_fd``)."""

    def __init__(self):
        self._lock = rpc.allocate_lock()
        self._items = collections.deque()
        self._wake = rpc.allocate_lock()
        self._wake.acquire()
        self._waiting = False
        self._wake_fd = None

    def set_wake_fd(self, fd):
        self._wake_fd = fd
        if self._items:
            self._poke()

    def _poke(self):
        try:
            _os_write(self._wake_fd, b"x")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the consumer is awake anyway
        except OSError:
            pass

    def put(self, item):
        self._lock.acquire()
        self._items.append(item)
        wake = self._waiting
        self._waiting = False
        self._lock.release()
        if wake:
            self._wake.release()
        if self._wake_fd is not None:
            self._poke()

    def get_nowait(self):
        self._lock.acquire()
        item = self._items.popleft() if self._items else None
        self._lock.release()
        return item

    def get(self):
        while True:
            self._lock.acquire()
            if self._items:
                item = self._items.popleft()
                self._lock.release()
                return item
            self._waiting = True
            self._lock.release()
            self._wake.acquire()


class Wrapper(object):
    def __init__(self, args):
        self.args = args
        self.client = None
        self.service = None
        self.sensor = None
        self.ref = None
        self.pack = None
        self.class_name = None
        self.file_path = None
        self.phase = "start"

        self.stop_timeout = _env_float("SENSOR_STOP_TIMEOUT", 4.0)
        self.ack_timeout = _env_float("SENSOR_ACK_TIMEOUT", 10.0)

        self._state = rpc.allocate_lock()
        self.shutdown_requested = False
        self.shutdown_reason = None
        self._stop_noted = False
        self._retry_started = False
        self._green_interrupt_scheduled = False
        self.interrupted = False
        self.exiting = False
        self.cleanup_started = False
        self._cleanup_done = rpc.allocate_lock()
        self._cleanup_done.acquire()
        self._exit_lock = rpc.allocate_lock()

        self._wd_started = False
        self._wd_wake = rpc.allocate_lock()
        self._wd_wake.acquire()
        self._soft_deadline = None
        self._hard_deadline = None
        self._hard_reason = None

        self._triggers = {}
        self._tq = _Queue()
        self._trigger_thread_started = False
        self._log_handler = None

    # ------------------------------------------------------------- reporting

    def _label(self):
        return 'sensor "%s" (class "%s" in file "%s")' % (
            self.ref or "?", self.class_name or "?", self.file_path or "?")

    def _stderr(self, text):
        try:
            sys.stderr.write("sensor_wrapper: %s\n" % (text,))
            sys.stderr.flush()
        except Exception:
            pass

    def _log(self, level, text):
        """Send ``text`` to the container log; whether it could be sent."""
        client = self.client
        if client is not None and not client.closed:
            client.log(level, text, logger=WRAPPER_LOGGER)
            return True
        return False

    def _fatal(self, text, with_traceback=True):
        """Report an error that ends the sensor: the traceback to stderr (one
        record in the container log), the summary to the container log, or
        to stderr when the pipe is not there to carry it (never both: the
        summary would show twice)."""
        if with_traceback:
            try:
                traceback.print_exc()
            except Exception:
                pass
        if not self._log("error", text):
            self._stderr("ERROR: " + text)

    # --------------------------------------------------------------- signals

    def install_signal_handlers(self):
        for signame in ("SIGTERM", "SIGINT"):
            signum = getattr(signal, signame, None)
            if signum is not None:
                signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame):
        # Runs in the main thread between two bytecodes of whatever it was
        # doing: take no lock here (the main thread may hold it).
        try:
            name = signal.Signals(signum).name
        except Exception:
            name = "signal %d" % signum
        if not self.shutdown_requested:
            self.shutdown_requested = True
            rpc.start_thread(self._note_shutdown_request, ("received %s" % (name,),))
        if self.exiting or self.interrupted or rpc.deferred_interrupt_delivered():
            return
        if self._schedule_green_interrupt(name):
            return
        if rpc.frame_in_runtime(frame) and not rpc.main_thread_interruptible():
            # The main thread is inside the RPC client (maybe mid-write or
            # holding its lock): the client raises when the call returns. If
            # the call blocks (full window), signal again shortly.
            if not rpc.deferred_interrupt_pending():
                rpc.defer_interrupt(SensorShutdown(self.shutdown_reason or "received " + name))
            if not self._retry_started:
                self._retry_started = True
                rpc.start_thread(self._retry_interrupt, ())
            return
        rpc.defer_interrupt(None)
        self.interrupted = True
        raise SensorShutdown(self.shutdown_reason or "received " + name)

    def _schedule_green_interrupt(self, name):
        """Monkey-patched sensors: if the signal interrupted a green thread
        other than the main one (a request handler of a green server...),
        raising there would only end that green thread (threading swallows
        SystemExit). Have the hub raise it in the main green thread instead,
        as soon as the running one yields. Returns True if scheduled (or
        already scheduled)."""
        if self._green_interrupt_scheduled:
            return True
        if not _eventlet_thread_patched():
            return False
        try:
            import greenlet
            from eventlet import hubs

            current = greenlet.getcurrent()
            if current.parent is None:
                return False  # the main green thread itself: raise here
            hub = hubs.get_hub()
            if current is hub.greenlet:
                return False  # the hub: the exception propagates to the main one
            main = current
            while main.parent is not None:
                main = main.parent
            self._green_interrupt_scheduled = True
            hub.schedule_call_global(0, self._green_interrupt, main,
                                     SensorShutdown(self.shutdown_reason or "received " + name))
            return True
        except Exception:
            return False

    def _green_interrupt(self, main, exc):
        # On the hub, in the main OS thread.
        if self.exiting or self.interrupted or rpc.deferred_interrupt_delivered():
            return
        if main.dead:
            return
        rpc.defer_interrupt(None)
        self.interrupted = True
        main.throw(exc)

    def _retry_interrupt(self):
        deadline = _monotonic() + self.stop_timeout
        while _monotonic() < deadline:
            rpc.real_sleep(0.05)
            if (self.exiting or self.interrupted or rpc.deferred_interrupt_delivered()
                    or not rpc.deferred_interrupt_pending()):
                return
            try:
                _pthread_kill(rpc.MAIN_THREAD_IDENT, signal.SIGTERM)
            except Exception:
                return

    def _note_shutdown_request(self, reason):
        """Record the first stop request and arm the watchdog (never called
        from the signal handler itself: it takes a lock)."""
        self._state.acquire()
        first = not self._stop_noted
        if first:
            self._stop_noted = True
            self.shutdown_requested = True
            if self.shutdown_reason is None:
                self.shutdown_reason = reason
        self._state.release()
        if first:
            now = _monotonic()
            self._arm_watchdog(hard=now + self.stop_timeout,
                               soft=now + min(1.0, self.stop_timeout / 4.0),
                               reason="stop requested (%s)" % (reason,))
        return first

    def request_shutdown(self, reason):
        """Stop request from another thread (reader): interrupt the main thread."""
        self._note_shutdown_request(reason)
        if self.exiting or self.interrupted or rpc.deferred_interrupt_delivered():
            return
        try:
            _pthread_kill(rpc.MAIN_THREAD_IDENT, signal.SIGTERM)
        except Exception as exc:
            self._stderr("could not interrupt the main thread: %r" % (exc,))

    # -------------------------------------------------------------- watchdog

    def _arm_watchdog(self, hard, soft=None, reason=None):
        self._state.acquire()
        changed = False
        if self._hard_deadline is None or hard < self._hard_deadline:
            self._hard_deadline = hard
            self._hard_reason = reason
            changed = True
        if soft is not None and (self._soft_deadline is None or soft < self._soft_deadline):
            self._soft_deadline = soft
            changed = True
        start = not self._wd_started
        self._wd_started = True
        self._state.release()
        if start:
            rpc.start_thread(self._watchdog_main, ())
        elif changed:
            try:
                self._wd_wake.release()
            except RuntimeError:
                pass

    def _watchdog_main(self):
        """Bounds every exit: if the main thread does not react to a stop
        request, run cleanup() here; if nothing finishes in time, exit."""
        while True:
            now = _monotonic()
            soft = self._soft_deadline
            hard = self._hard_deadline
            if soft is not None and now >= soft:
                self._soft_deadline = None
                if not self.cleanup_started:
                    self._stderr("the main thread did not stop within %.1fs of the stop request "
                                 "(run() blocked in native code, or it swallowed the interrupt); "
                                 "calling cleanup() from another thread"
                                 % (min(1.0, self.stop_timeout / 4.0),))
                    self.exiting = True
                    self._cleanup_once()
                    self._finish(0)
                continue
            if hard is not None and now >= hard:
                self._stderr("exit did not complete in time (%s); forcing the exit"
                             % (self._hard_reason or "timeout",))
                _flush_std()
                _os_exit(1)
            deadline = min(d for d in (soft, hard) if d is not None) if (soft or hard) else now + 60
            self._wd_wake.acquire(True, max(0.001, deadline - now))

    # ------------------------------------------------------------ exit paths

    def _cleanup_once(self):
        """Call sensor.cleanup() once, whichever thread gets here first."""
        self._state.acquire()
        first = not self.cleanup_started
        self.cleanup_started = True
        self.exiting = True
        self._state.release()
        if not first:
            return
        try:
            if self.sensor is not None:
                try:
                    self.sensor.cleanup()
                except SystemExit as exc:
                    if not isinstance(exc, SensorShutdown):
                        self._stderr("cleanup() called sys.exit(%r); ignored" % (exc.code,))
                except Exception as exc:
                    self._fatal("%s cleanup() raised an exception: %s: %s"
                                % (self._label(), type(exc).__name__, exc))
        finally:
            self._cleanup_done.release()

    def _finish(self, code):
        """Wait (bounded) for a running cleanup and for outstanding acks, then
        exit the process with ``code``. Only the first caller proceeds."""
        if not self._exit_lock.acquire(False):
            if rpc.get_ident() == rpc.MAIN_THREAD_IDENT:
                self._exit_lock.acquire()  # the other exit path ends the process
            return
        self.exiting = True
        now = _monotonic()
        hard = self._hard_deadline
        deadline = now + self.ack_timeout
        if hard is not None:
            deadline = min(deadline, hard - 0.3)
        if self.cleanup_started:
            remaining = deadline - _monotonic()
            if remaining > 0:
                got = self._cleanup_done.acquire(True, remaining)
                if got:
                    self._cleanup_done.release()
        client = self.client
        if client is not None:
            remaining = max(0.0, deadline - _monotonic())
            if not client.wait_acks(remaining) and not client.closed:
                self._stderr("%d dispatch(es) were still unacknowledged at exit" % (client.inflight,))
        if rpc.get_ident() == rpc.MAIN_THREAD_IDENT:
            # Flush the sensor's own handlers (files...). Not from the
            # watchdog: eventlet may have made logging's locks green.
            try:
                logging.shutdown()
            except Exception:
                pass
        _flush_std()
        _os_exit(code)

    def _exit_after_cleanup(self, code):
        self.exiting = True
        self._arm_watchdog(hard=_monotonic() + self.ack_timeout + 10.0,
                           reason="exit with code %s" % (code,))
        self._cleanup_once()
        return code

    # -------------------------------------------------------------- lifecycle

    def main(self):
        code = 1
        try:
            code = self._lifecycle()
        except SensorShutdown as exc:
            code = self._on_shutdown_in_main(exc)
        except BaseException:
            # Shouldn't happen: _lifecycle handles the sensor's exceptions.
            self._fatal("%s: internal error in the sensor wrapper" % (self._label(),))
            code = 1
        self._finish(code)
        return code

    def _on_shutdown_in_main(self, exc):
        self.exiting = True
        self._arm_watchdog(hard=_monotonic() + self.stop_timeout, reason="stop")
        self._cleanup_once()
        return 0

    def _lifecycle(self):
        args = self.args
        self.install_signal_handlers()
        try:
            sys.stdout.reconfigure(line_buffering=True)
        except Exception:
            pass

        self.phase = "connect"
        try:
            client = rpc.connect_from_env()
        except RuntimeError as exc:
            self._fatal(str(exc), with_traceback=False)
            return 1
        self.client = client
        client.on_notification = self._on_notification
        client.on_close = self._on_close
        client.start()
        self._setup_logging()
        if client.attached:
            self._log("info", "process %d (parent %d) attached to the sensor over %s"
                      % (os.getpid(), os.getppid(), rpc.RPC_SOCKET_ENV))

        # -- init
        self.phase = "init"
        init = self._call_init()
        if init is None:
            return 1
        env = os.environ
        self.ref = args.ref or init.get("ref") or env.get("SENSOR_REF") or None
        self.class_name = (args.class_name or init.get("class_name")
                           or env.get("SENSOR_CLASS_NAME") or None)
        if not self.class_name and self.ref and "." in self.ref:
            self.class_name = self.ref.split(".", 1)[1]
        self.pack = args.pack or init.get("pack") or env.get("SENSOR_PACK") or None
        if not self.pack and self.ref and "." in self.ref:
            self.pack = self.ref.split(".", 1)[0]
        if not self.ref and self.pack and self.class_name:
            self.ref = "%s.%s" % (self.pack, self.class_name)
        file_path = args.file or init.get("entry_point")
        self.file_path = os.path.abspath(file_path) if file_path else None
        if not self.file_path or not self.class_name:
            self._fatal("%s: no sensor file (--file or init's entry_point) or class name "
                        "(--class-name, --ref or init's class_name) given"
                        % (self._label(),), with_traceback=False)
            return 1
        poll_interval = args.poll_interval
        if poll_interval is None:
            poll_interval = init.get("poll_interval")
        config = init.get("config")
        if config is None:
            config = {}
        triggers = init.get("triggers") or []
        if init.get("max_frame_bytes"):
            try:
                client.max_frame_bytes = int(init["max_frame_bytes"])
            except (TypeError, ValueError):
                pass
        if self._log_handler is not None:
            self._log_handler.strip_prefixes = (
                "%s.%s.%s." % (LOGGER_NAME_PREFIX, self.pack, self.class_name),
                "%s%s_" % (MODULE_NAME_PREFIX, _ident(self.pack or "pack")),
            )

        self.service = SensorService(client, self.pack, self.class_name,
                                     logger=logging.getLogger(WRAPPER_LOGGER))

        # -- load and construct
        self.phase = "load"
        try:
            cls = self._load_class()
        except SensorLoadError as exc:
            self._fatal(str(exc), with_traceback=getattr(exc, "with_traceback_", True))
            return 1
        try:
            self.sensor = self._construct(cls, config, poll_interval)
        except SensorShutdown:
            raise
        except BaseException as exc:
            self._fatal('Failed to instantiate sensor class "%s" from file "%s" (sensor "%s"): '
                        '%s: %s' % (self.class_name, self.file_path, self.ref,
                                    type(exc).__name__, exc))
            return 1

        # -- triggers, setup, ready, run
        self.phase = "setup"
        for trigger in triggers:
            if isinstance(trigger, dict):
                self._deliver("add", trigger)
        self._start_trigger_thread()
        try:
            self.sensor.setup()
        except SensorShutdown:
            raise
        except BaseException as exc:
            self._fatal("%s setup() raised an exception: %s: %s"
                        % (self._label(), type(exc).__name__, exc))
            return self._exit_after_cleanup(1)
        client.notify("ready")

        self.phase = "run"
        try:
            self.sensor.run()
        except SensorShutdown:
            raise
        except SystemExit as exc:
            code = _exit_code(exc.code)
            if code:
                self._stderr("%s run() called sys.exit(%r)" % (self._label(), exc.code))
            return self._exit_after_cleanup(code)
        except BaseException as exc:
            self._fatal("%s run() raised an exception: %s: %s"
                        % (self._label(), type(exc).__name__, exc))
            return self._exit_after_cleanup(1)
        return self._exit_after_cleanup(0)

    def _setup_logging(self):
        level_name = os.environ.get("SENSOR_LOG_LEVEL", "INFO").upper()
        level = logging.getLevelName(level_name)
        if not isinstance(level, int):
            level = logging.INFO
        handler = RpcLogHandler(self.client)
        handler.setFormatter(logging.Formatter("%(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(level)
        self._log_handler = handler

    def _call_init(self):
        try:
            result = self.client.call("init", {}, timeout=INIT_TIMEOUT)
        except rpc.ConnectionClosed:
            self._fatal("the sensor container closed the pipe before answering init",
                        with_traceback=False)
            return None
        except rpc.RpcError as exc:
            if exc.code == rpc.METHOD_NOT_FOUND:
                self._stderr("the container does not implement init; using command-line "
                             "arguments, an empty config and no triggers")
                return {}
            self._fatal("init failed: %s" % (exc,), with_traceback=False)
            return None
        except TimeoutError:
            self._fatal("no answer to init within %ss" % (INIT_TIMEOUT,), with_traceback=False)
            return None
        if not isinstance(result, dict):
            self._fatal("init returned %r, expected an object" % (result,), with_traceback=False)
            return None
        return result

    # ------------------------------------------------------- load, construct

    def _load_class(self):
        path = self.file_path
        cls_name = self.class_name
        prefix = 'Failed to load sensor class "%s" from file "%s"' % (cls_name, path)
        if not os.path.isfile(path):
            err = SensorLoadError("%s: the file does not exist" % (prefix,))
            err.with_traceback_ = False
            raise err
        sensor_dir = os.path.dirname(path)
        if not any(sensor_dir in (p, p + os.sep) for p in sys.path):
            sys.path.append(sensor_dir)

        stem = os.path.splitext(os.path.basename(path))[0]
        module_name = "%s%s_%s" % (MODULE_NAME_PREFIX, _ident(self.pack or "pack"), _ident(stem))
        n = 1
        base = module_name
        while module_name in sys.modules:
            n += 1
            module_name = "%s_%d" % (base, n)
        try:
            loader = importlib.machinery.SourceFileLoader(module_name, path)
            spec = importlib.util.spec_from_file_location(module_name, path, loader=loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(module_name, None)
                raise
        except SensorShutdown:
            raise
        except BaseException as exc:
            raise SensorLoadError("%s: %s: %s" % (prefix, type(exc).__name__, exc))

        cls = getattr(module, cls_name, None)
        if cls is None:
            err = SensorLoadError('%s: the module has no class named "%s"' % (prefix, cls_name))
            err.with_traceback_ = False
            raise err
        if not inspect.isclass(cls):
            err = SensorLoadError('%s: "%s" is a %s, not a class'
                                  % (prefix, cls_name, type(cls).__name__))
            err.with_traceback_ = False
            raise err
        if not issubclass(cls, Sensor):
            # StackStorm accepts any class with the required methods.
            missing = sorted(m for m in Sensor.__abstractmethods__
                             if not callable(getattr(cls, m, None)))
            if missing:
                err = SensorLoadError(
                    '%s: class "%s" does not derive from st2reactor.sensor.base.Sensor and '
                    'does not implement the required method(s): %s'
                    % (prefix, cls_name, ", ".join(missing)))
                err.with_traceback_ = False
                raise err
        return cls

    def _construct(self, cls, config, poll_interval):
        kwargs = {"sensor_service": self.service, "config": config}
        is_polling = issubclass(cls, PollingSensor) or (
            not issubclass(cls, Sensor) and callable(getattr(cls, "poll", None)))
        if poll_interval is not None and is_polling:
            kwargs["poll_interval"] = poll_interval
        args, kwargs, late_poll = _adapt_constructor_call(cls, kwargs)
        instance = cls(*args, **kwargs)
        if late_poll is not None:
            setter = getattr(instance, "set_poll_interval", None)
            if callable(setter):
                setter(late_poll)
            else:
                instance._poll_interval = late_poll
        return instance

    # --------------------------------------------------------------- triggers

    def _on_notification(self, method, params):
        # Runs on the reader thread: never block here.
        if method in ("trigger.add", "trigger.update", "trigger.remove"):
            trigger = params.get("trigger") if isinstance(params, dict) else None
            if not isinstance(trigger, dict):
                self._stderr("ignoring %s without a trigger object" % (method,))
                return
            self._tq.put((method[len("trigger."):], trigger))
        elif method == "shutdown":
            reason = params.get("reason") if isinstance(params, dict) else None
            self.request_shutdown("shutdown requested by the container%s"
                                  % (": %s" % reason if reason else ""))
        else:
            self._stderr("ignoring unknown notification %r from the container" % (method,))

    def _on_close(self, reason):
        # Reader thread (or a failed writer). During init the main thread sees
        # ConnectionClosed itself.
        if self.exiting or self.phase in ("connect", "init"):
            return
        self.request_shutdown("the sensor pipe was closed (%s)" % (reason,))

    def _start_trigger_thread(self):
        """Start delivering triggers pushed by the container."""
        if self._trigger_thread_started:
            return
        self._trigger_thread_started = True
        if _eventlet_thread_patched():
            # The sensor monkey-patched: like StackStorm's TriggerWatcher,
            # deliver on a green thread of the main hub, so green threads that
            # add_trigger() starts actually run.
            try:
                self._start_green_delivery()
                return
            except Exception as exc:
                self._stderr("cannot deliver triggers on eventlet's hub (%r); using a thread"
                             % (exc,))
        rpc.start_thread(self._trigger_thread_main, ())

    def _start_green_delivery(self):
        import eventlet
        from eventlet import hubs

        rfd, wfd = os.pipe()
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        queue = self._tq

        def deliver_loop():
            while not self.exiting:
                hubs.trampoline(rfd, read=True)
                try:
                    _os_read(rfd, 4096)
                except (BlockingIOError, InterruptedError):
                    pass
                while not self.exiting:
                    item = queue.get_nowait()
                    if item is None:
                        break
                    self._deliver(*item)

        eventlet.spawn_n(deliver_loop)
        queue.set_wake_fd(wfd)

    def _trigger_thread_main(self):
        while True:
            kind, trigger = self._tq.get()
            if self.exiting:
                return
            try:
                self._deliver(kind, trigger)
            except BaseException as exc:  # never let this thread die silently
                self._stderr("trigger delivery failed: %r" % (exc,))

    def _deliver(self, kind, trigger):
        key = trigger.get("id") or trigger.get("uid") or trigger.get("ref")
        key = str(key)
        if kind == "remove":
            if key not in self._triggers:
                return  # StackStorm ignores removal of a trigger it never added
            del self._triggers[key]
        else:
            self._triggers[key] = trigger
        method = TRIGGER_METHODS[kind]
        try:
            getattr(self.sensor, method)(trigger=trigger)
        except SensorShutdown:
            raise
        except Exception as exc:
            self._fatal("%s %s() raised an exception for trigger %s: %s: %s"
                        % (self._label(), method, trigger.get("ref") or key,
                           type(exc).__name__, exc))


def _eventlet_thread_patched():
    patcher = sys.modules.get("eventlet.patcher")
    if patcher is None:
        return False
    try:
        return bool(patcher.is_monkey_patched("thread"))
    except Exception:
        return False


def _adapt_constructor_call(cls, kwargs):
    """StackStorm constructs sensors with keywords. Keep that when the
    constructor accepts them; otherwise pass what it cannot take by name
    positionally (in order), drop what it cannot take at all, and report a
    ``poll_interval`` it does not accept so it can be set afterwards."""
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return (), kwargs, None
    try:
        sig.bind(**kwargs)
        return (), kwargs, None
    except TypeError:
        pass
    params = list(sig.parameters.values())
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    var_pos = any(p.kind == p.VAR_POSITIONAL for p in params)
    new_kwargs = {}
    leftovers = []
    for key in ("sensor_service", "config", "poll_interval"):
        if key not in kwargs:
            continue
        if key in named or var_kw:
            new_kwargs[key] = kwargs[key]
        else:
            leftovers.append(key)
    free = [p for p in positional if p.name not in new_kwargs]
    args = []
    late_poll = None
    for key in leftovers:
        if key == "poll_interval":
            late_poll = kwargs[key]
            continue
        if free or var_pos:
            if free:
                free.pop(0)
            args.append(kwargs[key])
    try:
        sig.bind(*args, **new_kwargs)
    except TypeError:
        return (), kwargs, None  # let the real call raise StackStorm's error
    return tuple(args), new_kwargs, late_poll


def _ident(text):
    return re.sub(r"[^0-9A-Za-z_]", "_", text)


def _exit_code(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:
        pass
    return 1


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Run one StackStorm-style Python sensor under sensorcontainer.")
    parser.add_argument("--ref", help="sensor ref, <pack>.<ClassName>")
    parser.add_argument("--file", "--file-path", dest="file",
                        help="absolute path of the sensor's Python file (entry_point)")
    parser.add_argument("--class-name", dest="class_name", help="sensor class name")
    parser.add_argument("--pack", help="pack ref (default: from --ref)")
    parser.add_argument("--poll-interval", dest="poll_interval", type=float, default=None,
                        help="poll interval in seconds (PollingSensor only)")
    # Accepted for compatibility with StackStorm's wrapper; unused.
    parser.add_argument("--trigger-type-refs", dest="trigger_type_refs", help=argparse.SUPPRESS)
    parser.add_argument("--parent-args", dest="parent_args", help=argparse.SUPPRESS)
    # StackStorm's flag: eventlet does not patch the thread module (see
    # st2reactor/container/eventlet_patch.py).
    parser.add_argument("--use-debugger", dest="use_debugger", action="store_true",
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.poll_interval is not None and args.poll_interval == int(args.poll_interval):
        args.poll_interval = int(args.poll_interval)
    return args


def main(argv=None):
    args = parse_args(argv)
    wrapper = Wrapper(args)
    return wrapper.main()


if __name__ == "__main__":
    sys.exit(main())
