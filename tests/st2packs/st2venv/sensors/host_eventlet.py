import sys
import time

from st2reactor.sensor.base import Sensor


class HostEventlet(Sensor):
    def setup(self):
        pass

    def run(self):
        found = {}
        for name in ("eventlet", "six"):
            try:
                mod = __import__(name)
                found[name] = getattr(mod, "__file__", "?")
            except ImportError as exc:
                found[name] = "missing: %s" % exc
        self.sensor_service.dispatch("st2venv.venv_event", {"found": found, "prefix": sys.prefix})
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
