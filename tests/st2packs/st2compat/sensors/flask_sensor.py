import os
import socket
import time

import eventlet
from flask import Flask

# Made at import time, before any patching the sensor could do itself:
# werkzeug binds select/socket here.
app = Flask(__name__)


IN_FLIGHT = [0]


@app.route("/hello")
def hello():
    # Answer only once 10 requests are in flight at the same time: served
    # one at a time, none would ever be answered (the test's client gives
    # up after its deadline).
    IN_FLIGHT[0] += 1
    deadline = time.time() + 20
    while IN_FLIGHT[0] < 10 and time.time() < deadline:
        eventlet.sleep(0.01)
    return "hello" if IN_FLIGHT[0] >= 10 else "alone"


from st2reactor.sensor.base import Sensor  # noqa: E402


class FlaskSensor(Sensor):
    def setup(self):
        self._timer = eventlet.spawn_after(0.2, self._fired)

    def _fired(self):
        self.sensor_service.dispatch("st2compat.flask_event", {"timer": "fired"})

    def run(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        marker = os.path.join(self._config["out_dir"], "flask.port")
        with open(marker + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(marker + ".tmp", marker)
        app.run(host="127.0.0.1", port=port, threaded=True, use_reloader=False)

    def cleanup(self):
        pass

    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
