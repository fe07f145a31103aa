import os
import time

from st2reactor.sensor.base import Sensor


class ValidatingSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        svc = self.sensor_service
        results = [
            svc.dispatch("testpack.strict", {"size": 1}),                  # required missing
            svc.dispatch("testpack.strict", {"name": "x", "extra": 1}),    # additionalProperties
            svc.dispatch("testpack.strict", {"name": 5}),                  # wrong type
            svc.dispatch("testpack.strict", ["not", "a", "dict"]),         # not a dict
            svc.dispatch("testpack.no_such_trigger", {"name": "x"}),       # unknown trigger
            svc.dispatch("testpack.strict", {"name": "ok", "size": None}), # optional accepts null
        ]
        assert all(r is None for r in results), results
        open(os.path.join(self.config["out_dir"], "validating.done"), "w").close()
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
