import os
import time

from st2reactor.sensor.base import Sensor


class CounterSensor(Sensor):
    def setup(self):
        self.count = int(self.sensor_service.get_value("count") or 0)

    def run(self):
        for _ in range(5):
            self.count += 1
            self.sensor_service.dispatch("testpack.counted", {"count": self.count})
            self.sensor_service.set_value("count", self.count)   # str(value) is stored
        open(os.path.join(self.config["out_dir"], "counter.%d" % self.count), "w").close()
        while True:
            time.sleep(1)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

