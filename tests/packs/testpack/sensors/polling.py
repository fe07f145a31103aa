import os

from st2reactor.sensor.base import PollingSensor


class PollingCounter(PollingSensor):
    def setup(self):
        self.n = 0
        # Tests cannot wait 4 s per poll: lower the interval at run time.
        self.set_poll_interval(0.02)

    def poll(self):
        if self.n < 5:
            self.n += 1
            self.sensor_service.dispatch(trigger="testpack.tick", payload={"n": self.n})
        elif self.n == 5:
            self.n += 1
            open(os.path.join(self.config["out_dir"], "polling.done"), "w").close()

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
