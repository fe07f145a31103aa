"""st2reactor.sensor.base, in process."""

import unittest
from unittest import mock

from st2reactor.sensor import base
from st2reactor.sensor.base import PollingSensor, Sensor


class Complete(Sensor):
    def setup(self):
        pass

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


class Stop(Exception):
    pass


class Poller(PollingSensor):
    def __init__(self, *args, **kwargs):
        super(Poller, self).__init__(*args, **kwargs)
        self.events = []
        self.fail_at = None

    def setup(self):
        pass

    def poll(self):
        self.events.append(("poll", self.get_poll_interval()))
        polls = len([e for e in self.events if e[0] == "poll"])
        if polls == 2:
            self.set_poll_interval(30)
        if self.fail_at is not None and polls >= self.fail_at:
            raise Stop("poll failed")

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass


class SensorBaseTests(unittest.TestCase):
    def test_attributes(self):
        service = object()
        config = {"a": 1}
        s = Complete(sensor_service=service, config=config)
        self.assertIs(s.sensor_service, service)
        self.assertIs(s._sensor_service, service)
        self.assertIs(s.config, config)
        self.assertIs(s._config, config)

    def test_config_defaults_to_empty_dict(self):
        s = Complete(object())
        self.assertEqual(s.config, {})
        self.assertIs(s.config, s._config)
        s2 = Complete(sensor_service=object(), config=None)
        self.assertEqual(s2._config, {})

    def test_positional_arguments(self):
        s = Complete(object(), {"b": 2})
        self.assertEqual(s.config, {"b": 2})

    def test_abstract_methods(self):
        self.assertEqual(Sensor.__abstractmethods__, frozenset(
            ["setup", "run", "cleanup", "add_trigger", "update_trigger", "remove_trigger"]))
        self.assertEqual(PollingSensor.__abstractmethods__, frozenset(
            ["setup", "poll", "cleanup", "add_trigger", "update_trigger", "remove_trigger"]))

    def test_missing_method_fails_at_instantiation(self):
        class NoRun(Sensor):
            def setup(self):
                pass

            def cleanup(self):
                pass

            def add_trigger(self, trigger):
                pass

            def update_trigger(self, trigger):
                pass

            def remove_trigger(self, trigger):
                pass

        with self.assertRaises(TypeError) as ctx:
            NoRun(sensor_service=object())
        self.assertIn("abstract", str(ctx.exception))
        self.assertIn("run", str(ctx.exception))

    def test_polling_sensor_defaults(self):
        p = Poller(sensor_service=object())
        self.assertEqual(p.get_poll_interval(), 5)
        self.assertEqual(p._poll_interval, 5)
        self.assertEqual(p.config, {})
        p2 = Poller(sensor_service=object(), config={"x": 1}, poll_interval=12)
        self.assertEqual(p2.get_poll_interval(), 12)

    def test_run_polls_first_then_sleeps_interval_after_each_poll(self):
        p = Poller(sensor_service=object(), poll_interval=7)
        p.fail_at = 4

        def fake_sleep(seconds):
            p.events.append(("sleep", seconds))

        with mock.patch.object(base, "_sleep", fake_sleep):
            with self.assertRaises(Stop):
                p.run()
        # set_poll_interval(30) during the 2nd poll applies to the next sleep.
        self.assertEqual(p.events, [
            ("poll", 7), ("sleep", 7),
            ("poll", 7), ("sleep", 30),
            ("poll", 30), ("sleep", 30),
            ("poll", 30),
        ])

    def test_sleep_uses_time_sleep_looked_up_at_call_time(self):
        calls = []
        with mock.patch("time.sleep", lambda s: calls.append(s)), \
                mock.patch.dict("sys.modules", {"eventlet": None}):
            base._sleep(3)
        self.assertEqual(calls, [3])


if __name__ == "__main__":
    unittest.main()
