#!/usr/bin/env python3
"""Dispatch throughput of the Python sensor runtime against the in-test fake
container (tests/fake_container.py). Not a test.

    python3 crates/container/python/bench_dispatch.py [--count N] [--threads T]

A sensor dispatches N small events (~160-byte frames) from T threads and
returns from run(); the wrapper then waits for every acknowledgement. The
fake container acknowledges in batches (like the real group commit) and
does no storage, so this measures the sensor side of the pipe: encoding,
pipelining, the window, the reader thread. Prints dispatches/s as seen by the
sensor (dispatch calls) and by the container (first request to last ack).
"""

import argparse
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tests.fake_container import FakeContainer  # noqa: E402

SENSOR = '''
import threading, time
from st2reactor.sensor.base import Sensor

class BenchSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        n = %(count)d
        threads = %(threads)d
        per = n // threads
        dispatch = self.sensor_service.dispatch
        payload = {"greeting": "hello from the benchmark", "count": 0, "host": "sensor-1"}

        def work(k):
            p = dict(payload)
            for i in range(per):
                p["count"] = i
                dispatch("bench.event", p)

        t0 = time.perf_counter()
        if threads == 1:
            work(0)
        else:
            ts = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
        t1 = time.perf_counter()
        print("SENSOR dispatched=%%d seconds=%%.4f" %% (per * threads, t1 - t0), flush=True)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''


def run_once(count, threads):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench_sensor.py")
        with open(path, "w") as f:
            f.write(SENSOR % {"count": count, "threads": threads})
        fc = FakeContainer(path, "BenchSensor", pack="bench", fast=True).start()
        try:
            code = fc.wait_exit(120)
            if code != 0:
                raise SystemExit("wrapper exited with %r\n%s" % (code, fc.stderr_text))
            m = re.search(r"SENSOR dispatched=(\d+) seconds=([0-9.]+)", fc.stdout_text)
            sent = int(m.group(1))
            sensor_secs = float(m.group(2))
            server_secs = fc.last_ack_at - fc.first_dispatch_at
            if fc.acked != sent or fc.dispatch_count != sent:
                raise SystemExit("lost dispatches: sent %d received %d acked %d"
                                 % (sent, fc.dispatch_count, fc.acked))
            return sent, sent / sensor_secs, sent / server_secs
        finally:
            fc.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=200000)
    ap.add_argument("--threads", type=int, nargs="*", default=[1, 4])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("python %s, %d dispatches per run, window 1024" % (sys.version.split()[0], args.count))
    for threads in args.threads:
        best = None
        for _ in range(args.repeat):
            sent, sensor_rate, server_rate = run_once(args.count, threads)
            if best is None or server_rate > best[1]:
                best = (sensor_rate, server_rate)
        print("threads=%d: %8.0f dispatch calls/s (sensor), %8.0f acknowledged dispatches/s "
              "(container: first request to last ack), best of %d"
              % (threads, best[0], best[1], args.repeat))


if __name__ == "__main__":
    main()
