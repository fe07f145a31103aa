import threading

from st2reactor.sensor.base import Sensor


class SampleSensor(Sensor):
    """A passive sensor: run() emits examples.event every `event_interval`
    seconds until cleanup() asks it to stop."""

    def __init__(self, sensor_service, config=None):
        super(SampleSensor, self).__init__(sensor_service=sensor_service, config=config)
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        self._stop = threading.Event()
        self._count = 0

    def setup(self):
        self._greeting = self.config.get("greeting", "Hello")
        self._interval = max(1, int(self.config.get("event_interval", 5)))
        self._max_events = int(self.config.get("sample", {}).get("max_events", 0))
        self._logger.info("SampleSensor emits examples.event every %ss", self._interval)

    def run(self):
        while not self._stop.is_set():
            self._count += 1
            payload = {"greeting": self._greeting, "count": self._count}
            self._logger.debug("Dispatching examples.event %s", payload)
            self.sensor_service.dispatch(trigger="examples.event", payload=payload)
            if self._max_events and self._count >= self._max_events:
                self._logger.info("Sent %d events, stopping", self._count)
                return
            self._stop.wait(self._interval)

    def cleanup(self):
        self._stop.set()

    # Methods required for programmable sensors.
    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
