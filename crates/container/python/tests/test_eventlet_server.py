"""The wrapper monkey-patches with eventlet before the sensor module loads.

A sensor module that builds a web server when it is imported (a Flask app, a
socketserver/wsgiref server) and serves it in run() must stay cooperative:
concurrent requests answered, eventlet timers firing, a clean stop.

These tests need eventlet (and Flask for the Flask one) in the interpreter
that runs the wrapper. They do not install anything: they use the first of
ST2SHIM_FLASK_PYTHON, ST2SHIM_EVENTLET_PYTHON (the interpreter CI builds for
tests/test_eventlet.py) and the interpreter running the suite that can import
what they need, and are skipped, with the reason printed, when none can.
"""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

from tests.helpers import WrapperTestCase

_FOUND = {}


def python_with(*modules):
    """An interpreter that can import ``modules``, or raise SkipTest."""
    key = modules
    if key in _FOUND:
        if _FOUND[key][0] is None:
            raise unittest.SkipTest(_FOUND[key][1])
        return _FOUND[key][0]
    candidates = []
    for name in ("ST2SHIM_FLASK_PYTHON", "ST2SHIM_EVENTLET_PYTHON"):
        value = os.environ.get(name)
        if value and value not in candidates:
            candidates.append(value)
    if sys.executable not in candidates:
        candidates.append(sys.executable)
    code = "import warnings; warnings.simplefilter('ignore'); import " + ", ".join(modules)
    for python in candidates:
        try:
            ok = subprocess.run([python, "-c", code], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, timeout=60).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok:
            _FOUND[key] = (python, None)
            return python
    reason = ("no interpreter can import %s (tried %s); set ST2SHIM_FLASK_PYTHON or "
              "ST2SHIM_EVENTLET_PYTHON to one that can"
              % (", ".join(modules), ", ".join(candidates)))
    _FOUND[key] = (None, reason)
    sys.stderr.write("\n%s: skipped: %s\n" % (__name__, reason))
    sys.stderr.flush()
    raise unittest.SkipTest(reason)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, fc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            if fc.proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def get_all(urls, timeout=10.0):
    """GET every url at once (one thread each): {url: body or exception}."""
    results = {}
    lock = threading.Lock()

    def one(url):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                body = resp.read().decode()
        except Exception as exc:  # reported by the test
            body = exc
        with lock:
            results[url] = body

    threads = [threading.Thread(target=one, args=(u,)) for u in urls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout + 5)
    return results


def events(fc, name):
    with fc.lock:
        return [d["payload"] for d in fc.dispatches
                if isinstance(d.get("payload"), dict) and d["payload"].get("event") == name]


# What the sensor module saw when it was imported, and what the runtime kept
# real. Shared by both server sensors.
PROBE = '''
import select
import selectors
import sys

from eventlet import patcher

IMPORT_STATE = {
    "thread": patcher.is_monkey_patched("thread"),
    "socket": patcher.is_monkey_patched("socket"),
    "select": patcher.is_monkey_patched("select"),
    "time": patcher.is_monkey_patched("time"),
    "os": patcher.is_monkey_patched("os"),
    # StackStorm's select/poll workaround: the blocking poll is back on
    # select, selectors offers only eventlet's green SelectSelector.
    "select_poll": hasattr(select, "poll"),
    "selectors_poll": hasattr(selectors, "PollSelector"),
}


def runtime_state():
    rpc = sys.modules["st2reactor.container.rpc"]
    wrapper = sys.modules["__main__"]
    real_thread = patcher.original("_thread")
    return {
        "lock_real": isinstance(rpc.allocate_lock(), real_thread.LockType)
                     and type(rpc.allocate_lock()).__module__ in ("_thread", "builtins"),
        "start_thread_real": rpc.start_thread is real_thread.start_new_thread
                             or getattr(rpc.start_thread, "__module__", "") == "_thread",
        "socket_real": rpc._RealSocket is patcher.original("socket").socket,
        "sleep_real": rpc.real_sleep is patcher.original("time").sleep,
        "main_ident_real": rpc.MAIN_THREAD_IDENT == real_thread.get_ident(),
        "os_read_real": type(wrapper._os_read).__name__ == "builtin_function_or_method",
    }
'''

# A plain socketserver + wsgiref server created when the module is imported.
# Needs eventlet only (runs in CI with ST2SHIM_EVENTLET_PYTHON).
WSGIREF_SENSOR = PROBE + '''
import json
import os
import socketserver
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import eventlet

from st2reactor.sensor.base import Sensor

SERVICE = []


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path.startswith("/slow/"):
        n = int(path.rsplit("/", 1)[1])
        time.sleep(0.5)   # green: the other requests go on meanwhile
        SERVICE[0].dispatch("tests.event", {"event": "request", "n": n})
        body = json.dumps({"n": n}).encode()
    elif path == "/busy":
        # Does not yield for a while: a SIGTERM arriving now interrupts this
        # green thread, not the main one.
        SERVICE[0].dispatch("tests.event", {"event": "busy-start"})
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            pass
        body = b"busy"
    else:
        body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


# Built at import time, bound to a free port.
SERVER = ThreadingWSGIServer(("127.0.0.1", 0), QuietHandler)
SERVER.set_app(app)
SELECTOR = socketserver._ServerSelector.__name__


class WsgirefSensor(Sensor):
    def setup(self):
        SERVICE.append(self.sensor_service)
        self.main_greenlet = __import__("greenlet").getcurrent()
        eventlet.spawn_after(0.2, self.sensor_service.dispatch, "tests.event",
                             {"event": "timer"})
        state = dict(IMPORT_STATE, selector=SELECTOR, port=SERVER.server_address[1])
        state.update(runtime_state())
        self.sensor_service.dispatch("tests.event", dict(state, event="state"))

        # Dispatch from a real OS thread and from green threads at once.
        real_threading = patcher.original("threading")

        def burst(kind, k):
            for i in range(300):
                self.sensor_service.dispatch("tests.event", {"event": "burst", "kind": kind,
                                                             "k": k, "i": i})
                if kind == "green" and i % 50 == 0:
                    eventlet.sleep(0)

        real = [real_threading.Thread(target=burst, args=("real", k)) for k in range(2)]
        for t in real:
            t.start()
        for k in range(2):
            threading.Thread(target=burst, args=("green", k)).start()   # green after patching

    def run(self):
        SERVER.serve_forever()

    def cleanup(self):
        import greenlet
        from eventlet import patcher as p
        on_main = (p.original("_thread").get_ident()
                   == sys.modules["st2reactor.container.rpc"].MAIN_THREAD_IDENT
                   and greenlet.getcurrent() is self.main_greenlet)
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup main=%s\\n" % on_main)

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

# A Flask app created at import time, served by Flask's own development
# server (Werkzeug) in run().
FLASK_SENSOR = PROBE + '''
import os
import time

import eventlet
from flask import Flask, jsonify

from st2reactor.sensor.base import Sensor

SERVICE = []
app = Flask(__name__)


@app.route("/slow/<int:n>")
def slow(n):
    time.sleep(0.5)   # green
    SERVICE[0].dispatch("tests.event", {"event": "request", "n": n})
    return jsonify(n=n)


class FlaskSensor(Sensor):
    def setup(self):
        SERVICE.append(self.sensor_service)
        eventlet.spawn_after(0.2, self.sensor_service.dispatch, "tests.event",
                             {"event": "timer"})
        state = dict(IMPORT_STATE)
        state.update(runtime_state())
        self.sensor_service.dispatch("tests.event", dict(state, event="state"))

    def run(self):
        app.run(host="127.0.0.1", port=self.config["port"], threaded=True, use_reloader=False)

    def cleanup(self):
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup\\n")

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

# Flask's debug reloader: the first process re-runs sys.executable + argv as a
# child (WERKZEUG_RUN_MAIN=true) and waits for it; the child, which has no
# pipe, attaches and serves.
RELOADER_SENSOR = """
import os

from flask import Flask

from st2reactor.sensor.base import Sensor

SERVICE = []
app = Flask(__name__)


@app.route("/hello")
def hello():
    SERVICE[0].dispatch("tests.event", {"event": "request", "pid": os.getpid()})
    return "hello from %d" % os.getpid()


class ReloaderSensor(Sensor):
    def setup(self):
        SERVICE.append(self.sensor_service)
        self.role = "child" if os.environ.get("WERKZEUG_RUN_MAIN") == "true" else "parent"
        self.sensor_service.dispatch("tests.event", {"event": "setup", "role": self.role,
                                                     "pid": os.getpid()})

    def run(self):
        app.run(host="127.0.0.1", port=self.config["port"], debug=True, use_reloader=True,
                reloader_type="stat")

    def cleanup(self):
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup %s\\n" % self.role)

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
"""

# What a sensor sees at import time with SENSOR_EVENTLET=0.
DISABLED_SENSOR = '''
import os

from st2reactor.sensor.base import Sensor

import eventlet
from eventlet import patcher

PATCHED_AT_IMPORT = patcher.is_monkey_patched("thread")
SOCKET_AT_IMPORT = patcher.is_monkey_patched("socket")


class DisabledSensor(Sensor):
    def setup(self):
        self.sensor_service.dispatch("tests.event", {"event": "state",
                                                     "patched": PATCHED_AT_IMPORT,
                                                     "socket": SOCKET_AT_IMPORT})

    def run(self):
        pass

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

RUNTIME_REAL = {"lock_real": True, "start_thread_real": True, "socket_real": True,
                "sleep_real": True, "main_ident_real": True, "os_read_real": True}
PATCHED = {"thread": True, "socket": True, "select": True, "time": True, "os": True}


class EventletServerTests(WrapperTestCase):
    def assert_state(self, state):
        for key, value in PATCHED.items():
            self.assertEqual(state[key], value, (key, state))
        for key, value in RUNTIME_REAL.items():
            self.assertEqual(state[key], value, (key, state))
        self.assertTrue(state["select_poll"], state)
        self.assertFalse(state["selectors_poll"], state)

    def test_wsgiref_server_built_at_import(self):
        python = python_with("eventlet")
        fc = self.start(WSGIREF_SENSOR, "WsgirefSensor", python=python)
        self.assertTrue(fc.wait_ready(30), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: events(fc, "state"), 10), fc.stderr_text)
        [state] = events(fc, "state")
        self.assert_state(state)
        self.assertEqual(state["selector"], "SelectSelector")

        port = state["port"]
        self.assertTrue(wait_listening(port, fc), fc.stderr_text)
        t0 = time.monotonic()
        urls = ["http://127.0.0.1:%d/slow/%d" % (port, n) for n in range(10)]
        results = get_all(urls)
        elapsed = time.monotonic() - t0
        self.assertEqual({u: results.get(u) for u in urls},
                         {u: '{"n": %d}' % n for n, u in enumerate(urls)}, fc.stderr_text)
        # Ten 0.5 s requests served concurrently, not one after the other.
        self.assertLess(elapsed, 3.5)
        self.assertTrue(fc.wait_for(lambda: len(events(fc, "request")) == 10, 10))
        self.assertEqual(sorted(p["n"] for p in events(fc, "request")), list(range(10)))

        # The timer set in setup() fired; the bursts from real and green
        # threads all arrived.
        self.assertTrue(fc.wait_for(lambda: events(fc, "timer"), 10), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: len(events(fc, "burst")) == 1200, 10),
                        fc.stderr_text)
        burst = sorted((p["kind"], p["k"], p["i"]) for p in events(fc, "burst"))
        self.assertEqual(burst, sorted((kind, k, i) for kind in ("real", "green")
                                       for k in range(2) for i in range(300)))

        # SIGTERM while a request's green thread runs without yielding: the
        # main green thread is stopped (not the request's), cleanup() runs
        # there once, exit 0, well within the stop timeout.
        busy = threading.Thread(target=get_all, args=(["http://127.0.0.1:%d/busy" % port],))
        busy.start()
        self.assertTrue(fc.wait_for(lambda: events(fc, "busy-start"), 10), fc.stderr_text)
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0)
        busy.join(15)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(self.marker_lines(), ["cleanup main=True"])
        self.assertNotIn("did not stop within", fc.stderr_text)
        self.assertEqual(fc.acked, fc.dispatch_count)
        self.assertEqual(fc.log_messages("error"), [])
        self.assertNotIn("Eventlet is deprecated", fc.stderr_text)

    def test_flask_app_built_at_import(self):
        python = python_with("eventlet", "flask")
        port = free_port()
        fc = self.start(FLASK_SENSOR, "FlaskSensor", python=python, config={"port": port})
        self.assertTrue(fc.wait_ready(30), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: events(fc, "state"), 10), fc.stderr_text)
        self.assert_state(events(fc, "state")[0])

        self.assertTrue(wait_listening(port, fc), fc.stderr_text)
        t0 = time.monotonic()
        urls = ["http://127.0.0.1:%d/slow/%d" % (port, n) for n in range(10)]
        results = get_all(urls)
        elapsed = time.monotonic() - t0
        for n, u in enumerate(urls):
            self.assertIsInstance(results.get(u), str, (u, results.get(u), fc.stderr_text))
            self.assertEqual(results[u].replace(" ", "").strip(), '{"n":%d}' % n)
        self.assertLess(elapsed, 3.5)
        self.assertTrue(fc.wait_for(lambda: len(events(fc, "request")) == 10, 10))
        self.assertTrue(fc.wait_for(lambda: events(fc, "timer"), 10), fc.stderr_text)

        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertLess(time.monotonic() - t0, 3.0)
        self.assertEqual(self.marker_lines(), ["cleanup"])
        self.assertNotIn("did not stop within", fc.stderr_text)
        self.assertEqual(fc.acked, fc.dispatch_count)

    def test_flask_debug_reloader_child_attaches(self):
        python = python_with("eventlet", "flask")
        port = free_port()
        fc = self.start(RELOADER_SENSOR, "ReloaderSensor", python=python, config={"port": port})
        self.assertTrue(fc.wait_for(lambda: len(events(fc, "setup")) == 2, 30), fc.stderr_text)
        self.assertTrue(wait_listening(port, fc), fc.stderr_text)
        with fc.lock:
            setups = {d["payload"]["role"]: (c, d["payload"])
                      for c, d in zip(fc.dispatch_conns, fc.dispatches)
                      if d["payload"].get("event") == "setup"}
        self.assertEqual(setups["parent"][0], 0)
        self.assertEqual(setups["child"][0], 1)
        child_pid = setups["child"][1]["pid"]
        results = get_all(["http://127.0.0.1:%d/hello" % port])
        self.assertEqual(list(results.values()), ["hello from %d" % child_pid], fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: events(fc, "request"), 10), fc.stderr_text)
        with fc.lock:
            req = [(c, d["payload"]) for c, d in zip(fc.dispatch_conns, fc.dispatches)
                   if d["payload"].get("event") == "request"]
        self.assertEqual(req, [(1, {"event": "request", "pid": child_pid})])

        # Stop as the container does: shutdown to every initialized
        # connection and SIGTERM to the process group.
        self.assertEqual(sorted(fc.notify_all("shutdown", {"reason": "test"})), [0, 1])
        os.killpg(fc.proc.pid, signal.SIGTERM)
        self.assertExit(fc, 0)
        self.assertIn("cleanup parent", self.marker_lines())

    def test_disabled_by_environment(self):
        python = python_with("eventlet")
        fc = self.start(DISABLED_SENSOR, "DisabledSensor", python=python,
                        extra_env={"SENSOR_EVENTLET": "0"})
        self.assertExit(fc, 0)
        self.assertEqual(events(fc, "state"),
                         [{"event": "state", "patched": False, "socket": False}])

    def test_use_debugger_leaves_threads_unpatched(self):
        # StackStorm's --use-debugger: everything but the thread module.
        python = python_with("eventlet")
        args = ["--ref", "tests.DisabledSensor", "--file", self.path("test_sensor.py"),
                "--class-name", "DisabledSensor", "--use-debugger"]
        fc = self.start(DISABLED_SENSOR, "DisabledSensor", python=python, wrapper_args=args)
        self.assertExit(fc, 0)
        self.assertEqual(events(fc, "state"),
                         [{"event": "state", "patched": False, "socket": True}])


class EnvironmentRuleTests(unittest.TestCase):
    """In-process (importing eventlet_patch patches nothing)."""

    def test_rules(self):
        from st2reactor.container import eventlet_patch as ep

        for value in ("0", "false", "No", " off "):
            self.assertFalse(ep.enabled_by_env({"SENSOR_EVENTLET": value}), value)
        for value in (None, "", "1", "true", "auto"):
            env = {} if value is None else {"SENSOR_EVENTLET": value}
            self.assertTrue(ep.enabled_by_env(env), value)
        self.assertFalse(ep.patch_from_env({"SENSOR_EVENTLET": "0"}))
        self.assertEqual(ep.state["reason"], "SENSOR_EVENTLET disables it")
        self.assertTrue(ep.is_use_debugger_flag_provided(["w.py", "--use-debugger"], {}))
        self.assertTrue(ep.is_use_debugger_flag_provided(
            ["w.py", '--parent-args=["--use-debugger"]'], {}))
        self.assertTrue(ep.is_use_debugger_flag_provided(["w.py"], {"ST2_USE_DEBUGGER": "1"}))
        self.assertFalse(ep.is_use_debugger_flag_provided(["w.py", "--ref", "a.B"], {}))


if __name__ == "__main__":
    unittest.main()
