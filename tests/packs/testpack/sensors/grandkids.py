import json
import os
import subprocess
import sys
import time

from st2reactor.sensor.base import Sensor


class Grandkids(Sensor):
    def setup(self):
        pass

    def run(self):
        plain = subprocess.Popen(["sleep", "600"])
        daemon = subprocess.Popen(
            [sys.executable, "-c", "import os, time; os.setsid(); time.sleep(600)"],
            start_new_session=True,
        )
        # No environment of ours, its own session: only a cgroup finds it.
        scrubbed = subprocess.Popen(
            ["/usr/bin/env", "-i", "/bin/sleep", "601"], start_new_session=True
        )
        path = os.path.join(self.config["out_dir"], "grandkids.json")
        with open(path + ".tmp", "w") as f:
            json.dump(
                {"plain": plain.pid, "daemon": daemon.pid, "scrubbed": scrubbed.pid}, f
            )
        os.rename(path + ".tmp", path)
        while True:
            time.sleep(0.5)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
