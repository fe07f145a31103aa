import os
import threading
import time

from st2reactor.sensor.base import Sensor


class ThreadedSensor(Sensor):
    def setup(self):
        self.log = self.sensor_service.get_logger(__name__)

    def run(self):
        count = self.config["count"]

        def work(t):
            for i in range(count):
                self.sensor_service.dispatch("testpack.threaded_event", {"thread": t, "i": i})

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.log.info("threaded sensor dispatched %d events", 4 * count)
        open(os.path.join(self.config["out_dir"], "threaded.done"), "w").close()
        while True:
            time.sleep(1)

    def cleanup(self):
        open(os.path.join(self.config["out_dir"], "threaded.cleanup"), "w").close()

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
