from st2reactor.sensor.base import PollingSensor


class PollRaisesSensor(PollingSensor):
    def setup(self):
        pass

    def poll(self):
        raise KeyError("poll exploded")

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass

