import os
import sys
import time

from st2reactor.sensor.base import Sensor


class StdoutFloodSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        line = "y" * 99 + "\n"
        for _ in range(50000):          # 5 MB of ordinary lines
            sys.stdout.write(line)
        sys.stdout.write("z" * (5 * 1024 * 1024) + "\n")  # one 5 MB line
        sys.stdout.flush()
        self.sensor_service.dispatch("testpack.stdout_flood_event", {"survived": True})
        open(os.path.join(self.config["out_dir"], "stdout_flood.done"), "w").close()
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

