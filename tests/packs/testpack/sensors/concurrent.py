import os
import time

from st2reactor.sensor.base import Sensor


class _Writer(Sensor):
    def setup(self):
        pass

    def run(self):
        me = type(self).__name__
        for i in range(200):
            self.sensor_service.set_value("shared.%s.%03d" % (me, i), i, local=False)
        self.sensor_service.set_value("shared.last", me, local=False)
        open(os.path.join(self.config["out_dir"], "concurrent.%s" % me), "w").close()
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


class ConcurrentA(_Writer):
    pass


class ConcurrentB(_Writer):
    pass


class ConcurrentC(_Writer):
    pass
