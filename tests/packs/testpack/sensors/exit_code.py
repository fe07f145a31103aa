import sys

from st2reactor.sensor.base import Sensor


class ExitCodeSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        self.sensor_service.dispatch("testpack.exit_code_event", {"bye": True})
        sys.exit(3)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

