from st2reactor.sensor.base import Sensor


def deep(n):
    if n == 0:
        raise RuntimeError("the upstream API went away")
    return deep(n - 1)


class CrashingSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        deep(3)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
