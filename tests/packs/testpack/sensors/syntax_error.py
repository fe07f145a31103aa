from st2reactor.sensor.base import Sensor

class SyntaxErrorSensor(Sensor)
    pass
