import json
import os

from st2reactor.sensor.base import Sensor


class ConfigProbe(Sensor):
    def setup(self):
        pass

    def run(self):
        path = os.path.join(self._config["out_dir"], "config.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self._config, f)
        os.rename(path + ".tmp", path)
        self.sensor_service.dispatch("st2compat.probe_event", {"ok": True})
        while True:
            self.sensor_service.get_logger("probe")  # idle, as a real sensor waits
            import time
            time.sleep(0.5)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
