from st2reactor.sensor.base import Sensor


class CtorRaisesSensor(Sensor):
    def __init__(self, sensor_service, config):
        super().__init__(sensor_service=sensor_service, config=config)
        raise RuntimeError("constructor exploded")

    def setup(self):
        pass

    def run(self):
        pass

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

