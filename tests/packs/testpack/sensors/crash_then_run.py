import os
import sys
import time

from st2reactor.sensor.base import Sensor


class CrashThenRun(Sensor):
    def setup(self):
        path = os.path.join(self.config["out_dir"], "crash_then_run.starts")
        starts = int(open(path).read()) + 1 if os.path.exists(path) else 1
        with open(path, "w") as f:
            f.write(str(starts))
        if starts <= 3:
            sys.stderr.write("crash number %d\n" % starts)
            raise RuntimeError("crash number %d" % starts)

    def run(self):
        open(os.path.join(self.config["out_dir"], "crash_then_run.running"), "w").close()
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

