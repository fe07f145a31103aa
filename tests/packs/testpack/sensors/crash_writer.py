"""Sensors for tests/crash.rs: dispatch as fast as possible with the
checkpoint pattern, and keep a record of what the container acknowledged.

Each run: restore the sequence number from the "checkpoint" key, then loop:
dispatch a batch of events (payload id "<ClassName>:<seq>"), call
set_value("checkpoint", last_seq) -- answered only once every dispatch of the
batch is durable -- and only then append the batch's ids to
<out_dir>/crash.<ClassName>.acked and fsync it. That file is the sensor's
claim "acknowledged-durable"; the test checks every claimed id is stored.

A run dispatches at most `count` events (the pack config), then writes
crash.<ClassName>.done and idles, so the log stays small enough to verify.
"""

import fcntl
import os
import random
import time

from st2reactor.sensor.base import Sensor

MAX_BATCH = 200


class _CrashWriter(Sensor):
    def setup(self):
        name = type(self).__name__
        out = self.config["out_dir"]
        self._name = name
        self._trigger = "testpack.crash_" + name[-1].lower()
        self._cap = int(self.config["count"])
        self._done = os.path.join(out, "crash.%s.done" % name)
        with open(os.path.join(out, "crash.%s.pid" % name), "w") as f:
            f.write(str(os.getpid()))
        fd = os.open(os.path.join(out, "crash.%s.acked" % name),
                     os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        # Never two writers: a sensor of the killed container may still be
        # dying when its replacement starts.
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A kill in the middle of an append may leave a torn last line: cut it.
        size = os.fstat(fd).st_size
        if size:
            tail = os.pread(fd, min(size, 4096), max(0, size - 4096))
            keep = size - (len(tail) - (tail.rfind(b"\n") + 1))
            if keep != size:
                os.ftruncate(fd, keep)
                os.fsync(fd)
        self._fd = fd
        self._seq = int(self.sensor_service.get_value("checkpoint") or 0)
        self._rng = random.Random(os.getpid() ^ int(time.time() * 1e6))

    def run(self):
        dispatch = self.sensor_service.dispatch
        trigger = self._trigger
        name = self._name
        end = self._seq + self._cap
        while self._seq < end:
            first = self._seq + 1
            last = min(end, self._seq + self._rng.randint(1, MAX_BATCH))
            for seq in range(first, last + 1):
                dispatch(trigger, {"id": "%s:%d" % (name, seq), "seq": seq})
            # Answered only after every dispatch above is durable.
            self.sensor_service.set_value("checkpoint", last)
            self._seq = last
            record = "".join("%s:%d\n" % (name, seq) for seq in range(first, last + 1))
            os.write(self._fd, record.encode())
            os.fsync(self._fd)
        with open(self._done, "w") as f:
            f.write(str(self._seq))
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


class CrashWriterA(_CrashWriter):
    pass


class CrashWriterB(_CrashWriter):
    pass


class CrashWriterC(_CrashWriter):
    pass
