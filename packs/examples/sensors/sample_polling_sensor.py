import datetime

from st2reactor.sensor.base import PollingSensor


class SamplePollingSensor(PollingSensor):
    """A polling sensor: poll() runs right away, then every `poll_interval`
    seconds (5, from sample_polling_sensor.yaml)."""

    def __init__(self, sensor_service, config=None, poll_interval=None):
        super(SamplePollingSensor, self).__init__(sensor_service=sensor_service,
                                                  config=config,
                                                  poll_interval=poll_interval)
        self._logger = self.sensor_service.get_logger(name=self.__class__.__name__)
        self._poll_count = 0

    def setup(self):
        self._greeting = self.config.get("greeting", "Hello")
        self._source = self.config.get("sample", {}).get("source", "examples")
        self._logger.info("SamplePollingSensor polls every %ss", self.get_poll_interval())

    def poll(self):
        self._poll_count += 1
        payload = {
            "greeting": self._greeting,
            "source": self._source,
            "poll_count": self._poll_count,
            "polled_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.sensor_service.dispatch(trigger="examples.poll_event", payload=payload)

    def cleanup(self):
        pass

    # Methods required for programmable sensors.
    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
