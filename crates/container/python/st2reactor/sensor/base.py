"""Base classes for StackStorm sensors (``st2reactor.sensor.base``)."""

import abc
import sys
import time

__all__ = ["Sensor", "PollingSensor"]


class Sensor(metaclass=abc.ABCMeta):
    """Base class of every sensor.

    The sensor container constructs it with keywords ``sensor_service=`` and
    ``config=``, delivers the existing triggers (``add_trigger``), calls
    ``setup()``, then ``run()``. ``cleanup()`` is called once when the sensor
    stops.
    """

    def __init__(self, sensor_service, config=None):
        """
        :param sensor_service: the ``SensorService`` (dispatch, logger,
            datastore).
        :param config: the pack config (schema defaults filled in); ``{}`` if
            None.
        """
        self._sensor_service = sensor_service
        self.sensor_service = sensor_service
        self._config = config if config is not None else {}
        self.config = self._config

    @abc.abstractmethod
    def setup(self):
        """Run once before ``run()``."""

    @abc.abstractmethod
    def run(self):
        """Run the sensor. Returning ends the sensor process (exit 0)."""

    @abc.abstractmethod
    def cleanup(self):
        """Run once when the sensor stops."""

    @abc.abstractmethod
    def add_trigger(self, trigger):
        """A trigger of one of this sensor's trigger types exists (or was created)."""

    @abc.abstractmethod
    def update_trigger(self, trigger):
        """The parameters of one of this sensor's triggers changed."""

    @abc.abstractmethod
    def remove_trigger(self, trigger):
        """One of this sensor's triggers was deleted."""


class PollingSensor(Sensor):
    """A sensor whose ``poll()`` is called every ``poll_interval`` seconds.

    ``run()`` polls immediately, then sleeps the interval after each poll
    returns. An exception from ``poll()`` ends the sensor (exit 1).
    """

    def __init__(self, sensor_service, config=None, poll_interval=5):
        super(PollingSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._poll_interval = poll_interval

    @abc.abstractmethod
    def poll(self):
        """Poll the watched system and dispatch what it found."""

    def run(self):
        while True:
            self.poll()
            _sleep(self._poll_interval)

    def get_poll_interval(self):
        """The poll interval, in seconds."""
        return self._poll_interval

    def set_poll_interval(self, poll_interval):
        """Change the poll interval; takes effect at the next sleep."""
        self._poll_interval = poll_interval


def _sleep(seconds):
    # StackStorm sleeps with eventlet.sleep. Do the same when the sensor uses
    # eventlet, so its green threads keep running while run() waits; otherwise
    # time.sleep, looked up at call time (green if monkey-patched).
    eventlet = sys.modules.get("eventlet")
    sleep = getattr(eventlet, "sleep", None) if eventlet is not None else None
    if sleep is None:
        sleep = time.sleep
    sleep(seconds)
