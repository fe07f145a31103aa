from st2reactor.sensor.base import Sensor


class SomethingElse(Sensor):
    pass
