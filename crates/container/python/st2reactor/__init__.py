"""StackStorm compatibility shim of sensorcontainer.

Only what a StackStorm pack sensor imports is provided:
``st2reactor.sensor.base`` (``Sensor``, ``PollingSensor``) and
``st2reactor.container.sensor_wrapper`` (``SensorService``).
"""
