import json
import os
import time

from st2reactor.sensor.base import Sensor

SECRET = "PLAINTEXT-SECRET-" + "7f3a9c"


class DatastoreProbe(Sensor):
    def setup(self):
        pass

    def run(self):
        svc = self.sensor_service
        r = {}
        # TTL: visible until 2 s, gone at 2 s.
        t0 = time.time()
        r["set_ttl"] = svc.set_value("short", "lived", ttl=2)
        r["before_expiry"] = svc.get_value("short")
        while svc.get_value("short") is not None and time.time() - t0 < 10:
            time.sleep(0.02)
        r["ttl_gone_after"] = time.time() - t0
        # Setting again without a ttl clears the expiry.
        svc.set_value("sticky", "a", ttl=1)
        svc.set_value("sticky", "b")
        # Secrets.
        try:
            svc.set_value("secret", SECRET, encrypt=True)
            r["cipher"] = svc.get_value("secret")
            r["plain"] = svc.get_value("secret", decrypt=True) == SECRET
        except Exception as exc:
            r["encrypt_error"] = str(exc)
        # StackStorm semantics.
        r["missing"] = svc.get_value("nope")
        r["delete_missing"] = svc.delete_value("nope")
        svc.set_value("gone", 1)
        r["delete_present"] = svc.delete_value("gone")
        r["global"] = svc.set_value("probe.global", "g", local=False)
        r["global_value"] = svc.get_value("probe.global", local=False)
        r["listed"] = sorted(kv.name for kv in svc.list_values())
        try:
            svc.get_value("x", scope="user")
        except ValueError as exc:
            r["scope_error"] = str(exc)
        # The raw protocol rejects what the shim would have converted or refused.
        client = svc._client
        raw = {}
        for label, params in [
            ("non_string_value", {"name": "raw", "value": 5}),
            ("negative_ttl", {"name": "raw", "value": "v", "ttl": -1}),
            ("float_ttl", {"name": "raw", "value": "v", "ttl": 1.5}),
            ("empty_name", {"name": "", "value": "v"}),
            ("long_name", {"name": "n" * 2000, "value": "v"}),
            ("user_scope", {"name": "raw", "value": "v", "scope": "user"}),
        ]:
            try:
                client.call("kv.set", params)
                raw[label] = "accepted"
            except Exception as exc:
                raw[label] = getattr(exc, "code", repr(exc))
        r["raw"] = raw
        r["user_info"] = svc.get_user_info()
        with open(os.path.join(self.config["out_dir"], "probe.json"), "w") as f:
            json.dump(r, f)
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

