import os
import time

from st2reactor.sensor.base import Sensor


class Steady(Sensor):
    """Shared by SteadyOne and SteadyTwo (each in its own entry point file,
    so changing one file changes only that sensor)."""

    def setup(self):
        pass

    def run(self):
        open(os.path.join(self.config["out_dir"], "%s.%d" % (type(self).__name__, os.getpid())), "w").close()
        while True:
            time.sleep(1)

    def cleanup(self):
        open(os.path.join(self.config["out_dir"], "%s.cleanup" % type(self).__name__), "a").write("x")

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

