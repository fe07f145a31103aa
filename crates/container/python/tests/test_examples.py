"""The sensors of packs/examples, run under the wrapper with the fake
container (the pack config is what config.schema.yaml's defaults give)."""

import os
import time

from tests.helpers import WrapperTestCase
from tests.fake_container import FakeContainer

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
SENSORS = os.path.join(REPO, "packs", "examples", "sensors")

DEFAULT_CONFIG = {
    "greeting": "Hello from the examples pack",
    "event_interval": 5,
    "sample": {"source": "examples.SamplePollingSensor", "max_events": 0},
}


class ExamplePackTests(WrapperTestCase):
    def run_example(self, file_name, class_name, **kwargs):
        fc = FakeContainer(os.path.join(SENSORS, file_name), class_name, pack="examples",
                           **kwargs)
        self._containers.append(fc)
        return fc.start()

    def test_sample_sensor(self):
        config = dict(DEFAULT_CONFIG, event_interval=1, sample={"max_events": 2})
        fc = self.run_example("sample_sensor.py", "SampleSensor", config=config)
        self.assertExit(fc, 0)
        self.assertEqual(fc.dispatches, [
            {"trigger": "examples.event",
             "payload": {"greeting": "Hello from the examples pack", "count": 1}},
            {"trigger": "examples.event",
             "payload": {"greeting": "Hello from the examples pack", "count": 2}},
        ])

    def test_sample_sensor_stops_on_sigterm(self):
        fc = self.run_example("sample_sensor.py", "SampleSensor", config=DEFAULT_CONFIG)
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(len(fc.dispatches), 1)  # quiet: one event per 5 s

    def test_sample_polling_sensor(self):
        fc = self.run_example("sample_polling_sensor.py", "SamplePollingSensor",
                              config=DEFAULT_CONFIG, poll_interval=5)
        self.assertTrue(fc.wait_for(lambda: fc.acked >= 1, 10), fc.stderr_text)
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(len(fc.dispatches), 1)
        d = fc.dispatches[0]
        self.assertEqual(d["trigger"], "examples.poll_event")
        self.assertEqual(sorted(d["payload"]), ["greeting", "poll_count", "polled_at", "source"])
        self.assertEqual(d["payload"]["poll_count"], 1)
        self.assertEqual(d["payload"]["source"], "examples.SamplePollingSensor")
        self.assertRegex(d["payload"]["polled_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

    def test_file_watch_sensor(self):
        watched = self.path("watched.log")
        with open(watched, "w") as f:
            f.write("old line, not sent\n")
        trigger = {"id": "t-1", "uid": "trigger:examples:u1:abc", "ref": "examples.u1",
                   "name": "u1", "pack": "examples", "type": "examples.file_watch.line",
                   "parameters": {"file_path": watched}}
        fc = self.run_example("file_watch_sensor.py", "FileWatchSensor", config=DEFAULT_CONFIG,
                              triggers=[trigger])
        self.assertTrue(fc.wait_ready(), fc.stderr_text)
        time.sleep(0.3)
        with open(watched, "a") as f:
            f.write("first\nsecond\npart")
        self.assertTrue(fc.wait_for(lambda: len(fc.dispatches) >= 2, 10), fc.stderr_text)
        with open(watched, "a") as f:
            f.write("ial\n")
        self.assertTrue(fc.wait_for(lambda: len(fc.dispatches) >= 3, 10), fc.stderr_text)
        self.assertEqual(fc.dispatches, [
            {"trigger": "examples.u1", "payload": {"file_path": watched, "line": "first"}},
            {"trigger": "examples.u1", "payload": {"file_path": watched, "line": "second"}},
            {"trigger": "examples.u1", "payload": {"file_path": watched, "line": "partial"}},
        ])

        # A second trigger pushed by the container, on a file created later.
        other = self.path("other.log")
        t2 = dict(trigger, id="t-2", ref="examples.u2", name="u2",
                  parameters={"file_path": other})
        fc.notify("trigger.add", {"trigger": t2})
        time.sleep(0.3)
        with open(other, "w") as f:
            f.write("hello other\n")
        self.assertTrue(fc.wait_for(lambda: len(fc.dispatches) >= 4, 10), fc.stderr_text)
        self.assertEqual(fc.dispatches[3], {"trigger": "examples.u2",
                                            "payload": {"file_path": other,
                                                        "line": "hello other"}})

        # Removing the first trigger stops its watch.
        fc.notify("trigger.remove", {"trigger": trigger})
        self.assertTrue(fc.wait_for(lambda: any("Stopped watching" in m
                                                for m in fc.log_messages("info")), 10))
        with open(watched, "a") as f:
            f.write("after removal\n")
        with open(other, "a") as f:
            f.write("still watched\n")
        self.assertTrue(fc.wait_for(lambda: len(fc.dispatches) >= 5, 10), fc.stderr_text)
        time.sleep(1.5)
        self.assertEqual([d["payload"]["line"] for d in fc.dispatches[4:]], ["still watched"])

        fc.terminate()
        self.assertExit(fc, 0)
