import os
import signal
import time

from st2reactor.sensor.base import Sensor


class IgnoresSigtermSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        open(os.path.join(self.config["out_dir"], "ignores_sigterm.ready"), "w").close()
        while True:
            try:
                time.sleep(0.1)
            except BaseException:
                pass

    def cleanup(self):
        # A cleanup that never returns: only SIGKILL ends this sensor.
        while True:
            try:
                time.sleep(0.1)
            except BaseException:
                pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

