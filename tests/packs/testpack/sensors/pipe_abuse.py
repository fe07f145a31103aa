import os
import time

from st2reactor.sensor.base import Sensor


class PipeAbuseSensor(Sensor):
    """Writes an oversized frame and garbage straight onto the pipe."""

    def setup(self):
        pass

    def run(self):
        # The Python runtime takes SENSOR_RPC_FD out of the environment once
        # it owns the pipe (so child processes attach instead of sharing
        # it); the pipe is still fd 3.
        fd = int(os.environ.get("SENSOR_RPC_FD", "3"))
        big = b'{"jsonrpc":"2.0","method":"log","params":{"message":"' + b"x" * (2 * 1024 * 1024) + b'"}}\n'
        _write_all(fd, big)
        _write_all(fd, b"this is not json\n\x00\xff\xfe garbage\n[1,2,3]\n")
        self.sensor_service.dispatch("testpack.pipe_abuse_event", {"survived": True})
        open(os.path.join(self.config["out_dir"], "pipe_abuse.done"), "w").close()
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


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
