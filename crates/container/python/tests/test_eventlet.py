"""A sensor that imports eventlet and monkey-patches at import time.

Needs eventlet, which is not part of the runtime (stdlib only): the test makes
a virtualenv in a temp dir and pip-installs eventlet into it. It is skipped
only when pip cannot reach the package index. Set ST2SHIM_EVENTLET_PYTHON to
the interpreter of an existing environment with eventlet to skip the install.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

from tests.helpers import WrapperTestCase

NETWORK_ERRORS = (
    "Could not find a version that satisfies",
    "No matching distribution found",
    "NewConnectionError",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "Connection refused",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
)

_VENV = {}


def eventlet_python():
    """An interpreter with eventlet installed: made once per test run."""
    if "python" in _VENV:
        return _VENV["python"]
    existing = os.environ.get("ST2SHIM_EVENTLET_PYTHON")
    if existing:
        _VENV["python"] = existing
        return existing
    root = tempfile.mkdtemp(prefix="st2shim-eventlet-venv-")
    _VENV["root"] = root
    venv = os.path.join(root, "venv")
    proc = subprocess.run([sys.executable, "-m", "venv", venv], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300)
    if proc.returncode != 0:
        raise AssertionError("python -m venv failed:\n%s" % proc.stdout.decode(errors="replace"))
    python = os.path.join(venv, "bin", "python")
    try:
        proc = subprocess.run(
            [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
             "--timeout", "30", "eventlet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=540)
    except subprocess.TimeoutExpired:
        raise unittest.SkipTest("pip could not install eventlet within 9 minutes "
                                "(package index unreachable?)")
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        if any(e in out for e in NETWORK_ERRORS):
            raise unittest.SkipTest("pip cannot reach the package index to install eventlet:\n"
                                    + out[-1500:])
        raise AssertionError("pip install eventlet failed:\n%s" % out[-3000:])
    _VENV["python"] = python
    return python


def tearDownModule():
    root = _VENV.get("root")
    if root:
        shutil.rmtree(root, ignore_errors=True)


SENSOR = '''
import eventlet
eventlet.monkey_patch()

import os
import threading
import time

from eventlet import patcher
from st2reactor.sensor.base import Sensor


class GreenSensor(Sensor):
    def __init__(self, sensor_service, config=None):
        super(GreenSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        self._stop = False

    def setup(self):
        self._main_tid = patcher.original("threading").get_ident()
        self._logger.info("setup: thread patched=%s", patcher.is_monkey_patched("thread"))
        self.sensor_service.dispatch("tests.event", {
            "event": "setup",
            "patched": patcher.is_monkey_patched("thread") and patcher.is_monkey_patched("socket"),
            "lock": repr(threading.Lock),
        })

    def run(self):
        def worker(k):
            for i in range(3000):
                self.sensor_service.dispatch("tests.event", {"event": "bulk", "k": k, "i": i})
                if i % 250 == 0:
                    eventlet.sleep(0)
                    time.sleep(0.001)  # green after monkey_patch

        pool = [eventlet.spawn(worker, k) for k in range(4)]
        for gt in pool:
            gt.wait()
        self._logger.info("all dispatched")
        self.sensor_service.dispatch("tests.event", {"event": "done"})
        while not self._stop:
            eventlet.sleep(60)

    def cleanup(self):
        self._stop = True
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup\\n")

    def add_trigger(self, trigger):
        self._logger.info("add_trigger %s", trigger["ref"])
        real_tid = patcher.original("threading").get_ident()
        self.sensor_service.dispatch("tests.event", {
            "event": "add", "ref": trigger["ref"],
            "main_os_thread": real_tid == getattr(self, "_main_tid", real_tid)})

        # A (green) thread started here must run: StackStorm delivers triggers
        # on the sensor's hub, and so do we for monkey-patched sensors.
        def tail():
            time.sleep(0.01)
            self.sensor_service.dispatch("tests.event", {"event": "tailing",
                                                         "ref": trigger["ref"]})

        threading.Thread(target=tail).start()

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''


class EventletTests(WrapperTestCase):
    def test_monkey_patching_sensor(self):
        python = eventlet_python()
        trigger = {"id": "1", "uid": "trigger:tests:t1:0", "ref": "tests.t1", "name": "t1",
                   "pack": "tests", "type": "tests.event", "parameters": {}}
        fc = self.start(SENSOR, "GreenSensor", python=python, triggers=[trigger],
                        hold_acks_until_idle=0.3)
        self.assertTrue(fc.wait_ready(30), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: any(d["payload"].get("event") == "done"
                                                for d in fc.dispatches), 30),
                        fc.stderr_text)
        setup = [d["payload"] for d in fc.dispatches if d["payload"]["event"] == "setup"][0]
        self.assertTrue(setup["patched"], setup)
        bulk = [(d["payload"]["k"], d["payload"]["i"]) for d in fc.dispatches
                if d["payload"]["event"] == "bulk"]
        self.assertEqual(sorted(bulk), [(k, i) for k in range(4) for i in range(3000)])
        self.assertEqual(fc.max_unacked, 1024)

        # A trigger pushed by the container reaches add_trigger.
        t2 = dict(trigger, id="2", ref="tests.t2", name="t2")
        fc.notify("trigger.add", {"trigger": t2})
        self.assertTrue(fc.wait_for(lambda: ("tailing", "tests.t2") in [
            (d["payload"].get("event"), d["payload"].get("ref")) for d in fc.dispatches], 10),
            fc.stderr_text)
        added = {d["payload"]["ref"]: d["payload"] for d in fc.dispatches
                 if d["payload"]["event"] == "add"}
        self.assertTrue(added["tests.t2"]["main_os_thread"], added)

        # SIGTERM while run() sleeps in eventlet's hub.
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(self.marker_lines(), ["cleanup"])
        self.assertEqual(fc.acked, fc.dispatch_count)
        messages = fc.log_messages("info")
        self.assertIn("setup: thread patched=True", messages)
        self.assertIn("all dispatched", messages)
        self.assertIn("add_trigger tests.t1", messages)
        self.assertIn("add_trigger tests.t2", messages)
        self.assertEqual(fc.log_messages("error"), [])


if __name__ == "__main__":
    unittest.main()
