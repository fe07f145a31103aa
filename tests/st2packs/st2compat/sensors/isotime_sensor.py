import time

from st2common.util import isotime
from st2reactor.sensor.base import Sensor


class IsotimeSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        parsed = isotime.parse("2026-12-01T10:00:00.000000Z")
        self.sensor_service.dispatch("st2compat.shared_event", {
            "source": "isotime",
            "formatted": isotime.format(parsed, offset=False),
            "tz": str(parsed.tzinfo),
        })
        while True:
            time.sleep(0.5)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
