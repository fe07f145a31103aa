"""The sensor wrapper driven for real: a child process with a socketpair as
fd 3, against the in-test fake container."""

import os
import signal
import time

from tests.helpers import STUBS, WrapperTestCase

PASSIVE_SLEEPER = '''
import os, time
from st2reactor.sensor.base import Sensor

class Sleeper(Sensor):
    def setup(self):
        pass

    def run(self):
        self.sensor_service.dispatch("tests.event", {"n": 1})
        while True:
            time.sleep(3600)

    def cleanup(self):
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup\\n")
''' + STUBS


class DispatchTests(WrapperTestCase):
    def test_pipelined_dispatch_from_four_threads(self):
        src = '''
        import threading
        from st2reactor.sensor.base import Sensor

        class Blaster(Sensor):
            def setup(self):
                pass

            def run(self):
                def work(k):
                    for i in range(5000):
                        rv = self.sensor_service.dispatch("tests.event", {"k": k, "i": i})
                        assert rv is None
                threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            def cleanup(self):
                pass
        ''' + STUBS
        # Withhold every ack until the sensor stops sending for 0.3 s: a
        # pipelining client stalls exactly when its window (1024) is full.
        fc = self.start(src, "Blaster", hold_acks_until_idle=0.3)
        self.assertExit(fc, 0, timeout=60)
        self.assertEqual(fc.dispatch_count, 20000)
        self.assertEqual(fc.acked, 20000)
        self.assertEqual(fc.max_unacked, 1024, "the window must bound unacknowledged dispatches")
        seen = {}
        for params in fc.dispatches:
            self.assertEqual(params["trigger"], "tests.event")
            p = params["payload"]
            seen.setdefault(p["k"], set()).add(p["i"])
        self.assertEqual(sorted(seen), [0, 1, 2, 3])
        for k in range(4):
            self.assertEqual(seen[k], set(range(5000)), "thread %d lost dispatches" % k)
        self.assertEqual(fc.errors, [])

    def test_exit_waits_for_outstanding_acks(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Quick(Sensor):
            def setup(self):
                pass

            def run(self):
                for i in range(300):
                    self.sensor_service.dispatch("tests.event", {"i": i})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Quick", ack_delay=0.3)
        self.assertExit(fc, 0)
        self.assertEqual(fc.acked, 300)
        self.assertTrue(fc.wait_for(lambda: fc.eof, 5))
        self.assertGreaterEqual(fc.eof_at, fc.last_ack_at,
                                "the wrapper exited before its dispatches were acknowledged")

    def test_dispatch_errors_are_logged_and_return_none(self):
        src = '''
        import json, os
        from st2reactor.sensor.base import Sensor

        class Mixed(Sensor):
            def setup(self):
                pass

            def run(self):
                rvs = [
                    self.sensor_service.dispatch("tests.event", {"count": 1}),
                    self.sensor_service.dispatch("tests.event", {"count": "x"}),
                    self.sensor_service.dispatch("tests.nope", {"count": 2}),
                    self.sensor_service.dispatch("tests.event", "not a dict"),
                    self.sensor_service.dispatch_with_context(
                        "tests.event", {"count": 3}, trace_context={"trace_tag": "t-1"}),
                    self.sensor_service.dispatch("tests.event", {"count": 4}, trace_tag="tag-4"),
                ]
                with open(os.environ["MARKER"], "w") as f:
                    f.write(json.dumps(rvs))

            def cleanup(self):
                pass
        ''' + STUBS

        def reject(params):
            payload = params.get("payload")
            if params.get("trigger") == "tests.nope":
                return (-32011, 'unknown trigger "tests.nope"', None)
            if not isinstance(payload, (dict, type(None))):
                return (-32602, "invalid params: payload must be an object or null", None)
            if not isinstance(payload.get("count"), int):
                return (-32010, "payload failed validation",
                        {"path": "/count", "reason": '"x" is not of type "integer"'})
            return None

        fc = self.start(src, "Mixed", reject=reject)
        self.assertExit(fc, 0)
        with open(self.path("marker")) as f:
            self.assertEqual(f.read(), "[null, null, null, null, null, null]")
        self.assertEqual(fc.acked, 6)
        warnings = fc.log_messages("debug")
        self.assertEqual(len(warnings), 3, warnings)
        joined = "\n".join(warnings)
        self.assertIn('"x" is not of type "integer"', joined)
        self.assertIn("/count", joined)
        self.assertIn("-32010", joined)
        self.assertIn('unknown trigger "tests.nope"', joined)
        self.assertIn("-32011", joined)
        self.assertIn("payload must be an object", joined)
        self.assertIn("-32602", joined)
        self.assertNotIn("-32010", fc.stderr_text, "rejections are not echoed to stderr")
        by_count = {d["payload"].get("count") if isinstance(d["payload"], dict) else None: d
                    for d in fc.dispatches}
        self.assertEqual(by_count[3]["trace_context"], {"trace_tag": "t-1"})
        self.assertEqual(by_count[4]["trace_tag"], "tag-4")
        self.assertNotIn("trace_tag", by_count[1])

    def test_oversized_dispatch_is_not_sent_and_is_logged(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Big(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"blob": "x" * 5000})
                self.sensor_service.dispatch("tests.event", {"small": 1})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Big", max_frame_bytes=4096)
        self.assertExit(fc, 0)
        self.assertEqual([d["payload"] for d in fc.dispatches], [{"small": 1}])
        self.assertTrue(any("max_frame_bytes" in m for m in fc.log_messages("warning")),
                        fc.logs)


class StopTests(WrapperTestCase):
    def test_sigterm_runs_cleanup_once_and_exits_0(self):
        fc = self.start(PASSIVE_SLEEPER, "Sleeper")
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1))
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_shutdown_notification_runs_cleanup(self):
        fc = self.start(PASSIVE_SLEEPER, "Sleeper")
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        fc.notify("shutdown", {"reason": "test"})
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_shutdown_and_sigterm_together_clean_up_once(self):
        fc = self.start(PASSIVE_SLEEPER, "Sleeper")
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        fc.notify("shutdown", {"reason": "container stopping"})
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_eof_on_the_pipe_runs_cleanup_and_exits(self):
        fc = self.start(PASSIVE_SLEEPER, "Sleeper")
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        fc._sock.shutdown(2)
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_stop_when_run_swallows_the_interrupt(self):
        # A sensor whose run() catches everything (bare except) cannot be
        # interrupted; the wrapper calls cleanup() from another thread and
        # exits within the container's grace period.
        src = '''
        import os, time
        from st2reactor.sensor.base import Sensor

        class Stubborn(Sensor):
            def setup(self):
                self._stop = False

            def run(self):
                while True:
                    try:
                        time.sleep(3600)
                    except:  # noqa: E722
                        pass

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "Stubborn")
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0, timeout=6)
        # The contract: out before the container's 5 s grace ends in SIGKILL.
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_sigterm_while_dispatching_loses_nothing_sent(self):
        # SIGTERM lands while the main thread is busy dispatching (often
        # inside the RPC client): the interrupt is deferred to a safe point,
        # no frame is cut in half, and every sent dispatch is acknowledged.
        src = '''
        import os
        from st2reactor.sensor.base import Sensor

        class Busy(Sensor):
            def setup(self):
                pass

            def run(self):
                i = 0
                while True:
                    self.sensor_service.dispatch("tests.event", {"i": i, "pad": "p" * 100})
                    i += 1

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "Busy")
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 20000, 20), fc.stderr_text)
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])
        self.assertEqual(fc.errors, [], "a frame was corrupted")
        self.assertEqual(fc.acked, fc.dispatch_count)
        got = sorted(d["payload"]["i"] for d in fc.dispatches)
        self.assertEqual(got, list(range(len(got))))

    def test_sigterm_while_blocked_on_a_full_window(self):
        # The container stops acknowledging: dispatch() blocks on the full
        # window. SIGTERM must still interrupt run() on the main thread.
        src = '''
        import os
        from st2reactor.sensor.base import Sensor

        class Flooder(Sensor):
            def setup(self):
                pass

            def run(self):
                for i in range(5000):
                    self.sensor_service.dispatch("tests.event", {"i": i})

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "Flooder", no_acks=True, extra_env={"SENSOR_STOP_TIMEOUT": "3"})
        self.assertTrue(fc.wait_for(lambda: fc.dispatch_count >= 1024, 10), fc.stderr_text)
        time.sleep(0.2)
        self.assertEqual(fc.dispatch_count, 1024)
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0, timeout=6)
        self.assertEqual(self.marker_lines(), ["cleanup"])
        self.assertNotIn("did not stop within", fc.stderr_text)
        self.assertIn("unacknowledged", fc.stderr_text)
        self.assertLess(time.monotonic() - t0, 4.0)

    def test_sigterm_while_waiting_for_a_datastore_answer(self):
        src = '''
        import os
        from st2reactor.sensor.base import Sensor

        class Waiter(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.get_value("never-answered")

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "Waiter", silent_methods=("kv.get",))
        self.assertTrue(fc.wait_for(lambda: any(m.get("method") == "kv.get"
                                                for m in fc.messages), 10), fc.stderr_text)
        t0 = time.monotonic()
        fc.terminate()
        self.assertExit(fc, 0)
        # Interrupted at once, not rescued by the watchdog (the stderr check
        # says which); the time bound only rules out a hang.
        self.assertNotIn("did not stop within", fc.stderr_text)
        self.assertLess(time.monotonic() - t0, 4.0)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_run_returning_exits_0_and_calls_cleanup(self):
        src = '''
        import os
        from st2reactor.sensor.base import Sensor

        class Once(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"done": True})

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "Once")
        self.assertExit(fc, 0)
        self.assertTrue(fc.ready)
        self.assertEqual(fc.acked, 1)
        self.assertEqual(self.marker_lines(), ["cleanup"])


class FailureTests(WrapperTestCase):
    def assertFailure(self, fc, *needles):
        """Exit 1, and the summary (naming file, class and cause) reaches the
        container log once: as an error log notification while the pipe is
        up, not repeated on stderr (where the traceback goes)."""
        self.assertExit(fc, 1)
        err = fc.stderr_text
        errors = fc.log_messages("error")
        self.assertTrue(errors, "no error log notification; stderr:\n%s" % err)
        for needle in (fc.file_path, fc.class_name) + needles:
            # The traceback goes to stderr, the summary to the log.
            self.assertIn(needle, err if needle == "Traceback" else errors[-1])
        self.assertNotIn("sensor_wrapper: ERROR:", err, "the summary is not repeated on stderr")
        return err + "\n" + errors[-1]

    def test_exception_in_constructor(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class BadInit(Sensor):
            def __init__(self, sensor_service, config=None):
                super(BadInit, self).__init__(sensor_service, config)
                raise RuntimeError("constructor exploded")

            def setup(self):
                pass

            def run(self):
                pass

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "BadInit")
        self.assertFailure(fc, "constructor exploded", "Traceback")

    def test_exception_in_setup(self):
        src = '''
        import os
        from st2reactor.sensor.base import Sensor

        class BadSetup(Sensor):
            def setup(self):
                raise ValueError("setup exploded")

            def run(self):
                pass

            def cleanup(self):
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "BadSetup")
        self.assertFailure(fc, "setup exploded", "setup()")
        self.assertFalse(fc.ready)
        self.assertEqual(self.marker_lines(), ["cleanup"])

    def test_exception_in_run(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class BadRun(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"before": "crash"})
                raise KeyError("run exploded")

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "BadRun")
        self.assertFailure(fc, "run exploded", "run()", "Traceback")
        self.assertEqual(fc.acked, 1)

    def test_exception_in_poll(self):
        src = '''
        from st2reactor.sensor.base import PollingSensor

        class BadPoll(PollingSensor):
            def setup(self):
                self.n = 0

            def poll(self):
                self.n += 1
                if self.n == 2:
                    raise IOError("poll exploded")
                self.sensor_service.dispatch("tests.event", {"n": self.n})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "BadPoll", poll_interval=0.1)
        self.assertFailure(fc, "poll exploded", "Traceback")
        self.assertEqual([d["payload"] for d in fc.dispatches], [{"n": 1}])

    def test_class_not_found(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Other(Sensor):
            pass
        '''
        fc = self.start(src, "Missing")
        self.assertFailure(fc, 'no class named "Missing"')

    def test_syntax_error_in_sensor_file(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Broken(Sensor)
            def setup(self):
                pass
        '''
        fc = self.start(src, "Broken")
        self.assertFailure(fc, "SyntaxError")

    def test_import_error_in_sensor_file(self):
        src = '''
        import module_that_does_not_exist_anywhere
        '''
        fc = self.start(src, "Whatever")
        self.assertFailure(fc, "module_that_does_not_exist_anywhere")

    def test_missing_abstract_method(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class NoCleanup(Sensor):
            def setup(self):
                pass

            def run(self):
                pass

            def add_trigger(self, trigger):
                pass

            def update_trigger(self, trigger):
                pass

            def remove_trigger(self, trigger):
                pass
        '''
        fc = self.start(src, "NoCleanup")
        err = self.assertFailure(fc, "abstract", "cleanup", "TypeError")
        self.assertIn("Failed to instantiate", err)

    def test_missing_file(self):
        missing = self.path("no_such_sensor.py")
        fc = self.start("", "Ghost", wrapper_args=["--file", missing, "--class-name", "Ghost",
                                                   "--pack", "tests"])
        fc.file_path = missing
        self.assertFailure(fc, "does not exist")

    def test_run_calls_sys_exit(self):
        src = '''
        import sys
        from st2reactor.sensor.base import Sensor

        class Exits(Sensor):
            def setup(self):
                pass

            def run(self):
                sys.exit(3)

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Exits")
        self.assertExit(fc, 3)


class ConstructionTests(WrapperTestCase):
    def test_positional_required_config(self):
        src = '''
        import json, os
        from st2reactor.sensor.base import Sensor

        class NeedsConfig(Sensor):
            def __init__(self, sensor_service, config):
                super(NeedsConfig, self).__init__(sensor_service=sensor_service, config=config)

            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {
                    "config": self.config,
                    "same": self.config is self._config,
                    "service": self.sensor_service is self._sensor_service,
                })

            def cleanup(self):
                pass
        ''' + STUBS
        config = {"greeting": "hi", "nested": {"a": 1}}
        fc = self.start(src, "NeedsConfig", config=config)
        self.assertExit(fc, 0)
        self.assertEqual(fc.dispatches[0]["payload"],
                         {"config": config, "same": True, "service": True})

    def test_unusual_constructor_signatures(self):
        src = '''
        from st2reactor.sensor.base import Sensor, PollingSensor

        class OnlyService(Sensor):
            def __init__(self, sensor_service):
                super(OnlyService, self).__init__(sensor_service)

            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"config": self.config})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "OnlyService", config={"x": 1})
        self.assertExit(fc, 0)
        self.assertEqual(fc.dispatches[0]["payload"], {"config": {}})

    def test_polling_sensor_gets_poll_interval_and_polls_immediately(self):
        src = '''
        import time
        from st2reactor.sensor.base import PollingSensor

        class Poller(PollingSensor):
            def __init__(self, sensor_service, config=None, poll_interval=None):
                super(Poller, self).__init__(sensor_service=sensor_service, config=config,
                                             poll_interval=poll_interval)

            def setup(self):
                self.t0 = time.monotonic()

            def poll(self):
                self.sensor_service.dispatch("tests.poll", {
                    "interval": self.get_poll_interval(),
                    "attr": self._poll_interval,
                    "delay": time.monotonic() - self.t0,
                })

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Poller", poll_interval=7)
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        payload = fc.dispatches[0]["payload"]
        self.assertEqual(payload["interval"], 7)
        self.assertEqual(payload["attr"], 7)
        self.assertLess(payload["delay"], 2.0, "the first poll must not wait for the interval")
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(len(fc.dispatches), 1)

    def test_polling_sensor_without_poll_interval_parameter(self):
        src = '''
        from st2reactor.sensor.base import PollingSensor

        class FixedPoller(PollingSensor):
            def __init__(self, sensor_service, config=None):
                super(FixedPoller, self).__init__(sensor_service=sensor_service, config=config,
                                                  poll_interval=60)

            def setup(self):
                pass

            def poll(self):
                self.sensor_service.dispatch("tests.poll", {"interval": self.get_poll_interval()})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "FixedPoller", poll_interval=9)
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        self.assertEqual(fc.dispatches[0]["payload"], {"interval": 9})
        fc.terminate()
        self.assertExit(fc, 0)

    def test_passive_sensor_ignores_poll_interval(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Passive(Sensor):
            def __init__(self, sensor_service, config):
                super(Passive, self).__init__(sensor_service, config)

            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Passive", poll_interval=10)
        self.assertExit(fc, 0)

    def test_cli_poll_interval_and_env_identity(self):
        src = '''
        from st2reactor.sensor.base import PollingSensor

        class CliPoller(PollingSensor):
            def setup(self):
                pass

            def poll(self):
                self.sensor_service.dispatch("tests.poll", {"interval": self.get_poll_interval()})

            def cleanup(self):
                pass
        ''' + STUBS
        path = self.write_sensor(src, "cli_poller.py")
        fc = self.start(src, "CliPoller", file_name="cli_poller.py",
                        wrapper_args=["--file", path, "--class-name", "CliPoller",
                                      "--pack", "tests", "--poll-interval", "11"])
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        self.assertEqual(fc.dispatches[0]["payload"], {"interval": 11})
        fc.terminate()
        self.assertExit(fc, 0)

    def test_class_not_deriving_from_sensor_is_accepted(self):
        src = '''
        class Duck(object):
            def __init__(self, sensor_service, config=None):
                self.sensor_service = sensor_service

            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"duck": True})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Duck")
        self.assertExit(fc, 0)
        self.assertEqual(fc.dispatches[0]["payload"], {"duck": True})

    def test_sensor_directory_is_on_sys_path(self):
        with open(self.path("helper_mod.py"), "w") as f:
            f.write("VALUE = 42\n")
        src = '''
        import helper_mod
        from st2reactor.sensor.base import Sensor

        class UsesHelper(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"value": helper_mod.VALUE,
                                                             "module": __name__})

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "UsesHelper", file_name="uses_helper.py")
        self.assertExit(fc, 0)
        payload = fc.dispatches[0]["payload"]
        self.assertEqual(payload["value"], 42)
        self.assertIn("uses_helper", payload["module"])


class ServiceTests(WrapperTestCase):
    def test_get_logger_records_are_forwarded(self):
        src = '''
        import logging
        from st2reactor.sensor.base import Sensor

        class Chatty(Sensor):
            def __init__(self, sensor_service, config=None):
                super(Chatty, self).__init__(sensor_service=sensor_service, config=config)
                self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)

            def setup(self):
                self._logger.debug("not shown at INFO")
                self._logger.info("hello %s", "world")
                self._logger.warning("careful")

            def run(self):
                try:
                    1 / 0
                except ZeroDivisionError:
                    self._logger.exception("it failed")
                logging.getLogger("thirdparty.lib").error("library error")
                print("plain print goes to stdout")

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Chatty")
        self.assertExit(fc, 0)
        logs = [(l["level"], l.get("logger"), l["message"].splitlines()[0]) for l in fc.logs]
        self.assertIn(("info", "Chatty", "hello world"), logs)
        self.assertIn(("warning", "Chatty", "careful"), logs)
        self.assertIn(("error", "Chatty", "it failed"), logs)
        self.assertIn(("error", "thirdparty.lib", "library error"), logs)
        self.assertNotIn("not shown at INFO", str(fc.logs))
        failed = [l for l in fc.logs if l["message"].startswith("it failed")][0]
        self.assertIn("ZeroDivisionError", failed["message"])
        self.assertIn("plain print goes to stdout", fc.stdout_text)

    def test_log_level_from_environment(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class Debuggy(Sensor):
            def setup(self):
                self.sensor_service.get_logger("x").debug("debug line")

            def run(self):
                pass

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "Debuggy", extra_env={"SENSOR_LOG_LEVEL": "DEBUG"})
        self.assertExit(fc, 0)
        self.assertIn(("debug", "debug line"), [(l["level"], l["message"]) for l in fc.logs])

    def test_datastore_not_available_yet(self):
        src = '''
        from st2reactor.sensor.base import Sensor

        class UsesKV(Sensor):
            def setup(self):
                pass

            def run(self):
                out = {}
                try:
                    self.sensor_service.get_value("count")
                except NotImplementedError as e:
                    out["get"] = str(e)
                try:
                    self.sensor_service.set_value("count", 1)
                except NotImplementedError as e:
                    out["set"] = str(e)
                try:
                    self.sensor_service.get_value("count", scope="user")
                except ValueError as e:
                    out["scope"] = str(e)
                self.sensor_service.dispatch("tests.event", out)

            def cleanup(self):
                pass
        ''' + STUBS
        fc = self.start(src, "UsesKV")
        self.assertExit(fc, 0)
        out = fc.dispatches[0]["payload"]
        self.assertIn("not available in this version", out["get"])
        self.assertIn("tests.UsesKV:count", out["get"])
        self.assertIn("set_value", out["set"])
        self.assertEqual(out["scope"], "Scope user is unsupported.")
        kv = [m for m in fc.messages if str(m.get("method", "")).startswith("kv.")]
        self.assertEqual([m["method"] for m in kv], ["kv.get", "kv.set"])
        self.assertEqual(kv[0]["params"], {"name": "tests.UsesKV:count", "scope": "system",
                                           "decrypt": False})
        self.assertEqual(kv[1]["params"], {"name": "tests.UsesKV:count", "value": "1",
                                           "scope": "system", "encrypt": False})


class TriggerTests(WrapperTestCase):
    SRC = '''
    import time
    from st2reactor.sensor.base import Sensor

    class Watcher(Sensor):
        def setup(self):
            time.sleep(0.2)
            self.sensor_service.dispatch("tests.event", {"event": "setup"})

        def run(self):
            while True:
                time.sleep(3600)

        def cleanup(self):
            pass

        def add_trigger(self, trigger):
            self.sensor_service.dispatch("tests.event", {"event": "add", "ref": trigger["ref"],
                                                         "parameters": trigger["parameters"]})

        def update_trigger(self, trigger):
            self.sensor_service.dispatch("tests.event", {"event": "update",
                                                         "ref": trigger["ref"],
                                                         "parameters": trigger["parameters"]})

        def remove_trigger(self, trigger):
            self.sensor_service.dispatch("tests.event", {"event": "remove",
                                                         "ref": trigger["ref"]})
    '''

    @staticmethod
    def trigger(name, **params):
        return {"id": "id-" + name, "uid": "trigger:tests:%s:0" % name, "ref": "tests." + name,
                "name": name, "pack": "tests", "type": "tests.file_watch.line",
                "parameters": params}

    def events(self, fc):
        return [(d["payload"]["event"], d["payload"].get("ref")) for d in fc.dispatches]

    def test_initial_triggers_then_setup_then_notifications(self):
        initial = [self.trigger("shadow"), self.trigger("a1", file_path="/tmp/a")]
        fc = self.start(self.SRC, "Watcher", triggers=initial)
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        # Added while setup() runs: delivered (possibly before setup returns).
        fc.notify("trigger.add", {"trigger": self.trigger("b2", file_path="/tmp/b")})
        fc.notify("trigger.update", {"trigger": self.trigger("b2", file_path="/tmp/c")})
        fc.notify("trigger.remove", {"trigger": self.trigger("a1")})
        fc.notify("trigger.remove", {"trigger": self.trigger("never-added")})
        self.assertTrue(fc.wait_for(lambda: len(fc.dispatches) >= 6, 10), fc.dispatches)
        ev = self.events(fc)
        self.assertEqual(ev[:2], [("add", "tests.shadow"), ("add", "tests.a1")])
        self.assertIn(("setup", None), ev)
        self.assertEqual([e for e in ev if e[0] != "setup"][2:],
                         [("add", "tests.b2"), ("update", "tests.b2"), ("remove", "tests.a1")])
        upd = [d["payload"] for d in fc.dispatches if d["payload"]["event"] == "update"][0]
        self.assertEqual(upd["parameters"], {"file_path": "/tmp/c"})
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertNotIn(("remove", "tests.never-added"), self.events(fc))

    def test_trigger_add_before_setup_returns(self):
        src = '''
        import threading, time
        from st2reactor.sensor.base import Sensor

        class SlowSetup(Sensor):
            def setup(self):
                self.added = threading.Event()
                # setup() waits for a trigger pushed by the container meanwhile
                ok = self.added.wait(5)
                self.sensor_service.dispatch("tests.event", {"added_during_setup": ok})

            def run(self):
                pass

            def cleanup(self):
                pass

            def add_trigger(self, trigger):
                if trigger["ref"] == "tests.late":
                    self.added.set()

            def update_trigger(self, trigger):
                pass

            def remove_trigger(self, trigger):
                pass
        '''
        fc = self.start(src, "SlowSetup")
        self.assertTrue(fc.wait_for(lambda: any(m.get("method") == "init"
                                                for m in fc.messages), 10))
        time.sleep(0.2)
        fc.notify("trigger.add", {"trigger": self.trigger("late")})
        self.assertExit(fc, 0)
        self.assertEqual(fc.dispatches[0]["payload"], {"added_during_setup": True})

    def test_exception_in_add_trigger_is_logged_not_fatal(self):
        src = '''
        import time
        from st2reactor.sensor.base import Sensor

        class Picky(Sensor):
            def setup(self):
                pass

            def run(self):
                self.sensor_service.dispatch("tests.event", {"running": True})
                while True:
                    time.sleep(3600)

            def cleanup(self):
                pass

            def add_trigger(self, trigger):
                raise Exception("bad trigger %s" % trigger["ref"])

            def update_trigger(self, trigger):
                pass

            def remove_trigger(self, trigger):
                pass
        '''
        fc = self.start(src, "Picky", triggers=[self.trigger("x")])
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        self.assertTrue(any("bad trigger tests.x" in m for m in fc.log_messages("error")))
        fc.terminate()
        self.assertExit(fc, 0)


class SignalSafetyTests(WrapperTestCase):
    def test_sigterm_before_ready(self):
        src = '''
        import time
        from st2reactor.sensor.base import Sensor

        class SlowStart(Sensor):
            def setup(self):
                time.sleep(30)

            def run(self):
                pass

            def cleanup(self):
                import os
                with open(os.environ["MARKER"], "a") as f:
                    f.write("cleanup\\n")
        ''' + STUBS
        fc = self.start(src, "SlowStart")
        self.assertTrue(fc.wait_for(lambda: any(m.get("method") == "init"
                                                for m in fc.messages), 10))
        time.sleep(0.3)
        os.killpg(fc.proc.pid, signal.SIGTERM)
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])
