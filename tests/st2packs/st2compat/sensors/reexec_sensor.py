import os
import subprocess
import sys
import time

from st2reactor.sensor.base import Sensor


class ReexecSensor(Sensor):
    def setup(self):
        pass

    def run(self):
        if os.environ.get("REEXEC_CHILD") != "true":
            # What werkzeug's restart_with_reloader does: the same command
            # line in a new process with a copied environment.
            env = os.environ.copy()
            env["REEXEC_CHILD"] = "true"
            sys.exit(subprocess.call([sys.executable] + sys.argv, env=env, close_fds=False))
        self.sensor_service.dispatch("st2compat.shared_event", {
            "source": "reexec",
            "pid": os.getpid(),
            "parent": os.getppid(),
        })
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
