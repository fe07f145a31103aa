import os

import eventlet

eventlet.monkey_patch()

from st2reactor.sensor.base import Sensor  # noqa: E402


class EventletSensor(Sensor):
    def setup(self):
        self.log = self.sensor_service.get_logger("eventlet_sensor")

    def run(self):
        pool = eventlet.GreenPool()

        def work(g):
            for i in range(10):
                self.sensor_service.dispatch("testpack.eventlet_sensor_event", {"green": g, "i": i})
                eventlet.sleep(0)

        for g in range(3):
            pool.spawn(work, g)
        pool.waitall()
        self.log.info("eventlet sensor done")
        open(os.path.join(self.config["out_dir"], "eventlet.done"), "w").close()
        while True:
            eventlet.sleep(0.2)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

