import os
import time

from st2reactor.sensor.base import Sensor

PAD = "x" * 200


class BurstSensor(Sensor):
    def setup(self):
        self.out = self.config["out_dir"]
        self.total = 0

    def run(self):
        request = os.path.join(self.out, "burst.request")
        while True:
            if not os.path.exists(request):
                time.sleep(0.02)
                continue
            with open(request) as f:
                n = int(f.read().strip() or 0)
            os.unlink(request)
            for _ in range(n):
                self.sensor_service.dispatch("testpack.burst", {"n": self.total, "pad": PAD})
                self.total += 1
            # Answered only after every dispatch above was acknowledged (or
            # refused): the burst is over.
            self.sensor_service.get_value("burst-barrier")
            open(os.path.join(self.out, "burst.done.%d" % self.total), "w").close()

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
