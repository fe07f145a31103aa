"""Processes without the pipe attach over SENSOR_RPC_SOCKET with SENSOR_RPC_TOKEN.

Standard library only. The fake container listens on a Unix socket like the
real one (see tests/fake_container.py) and records which connection every
dispatch came on: 0 is the first process's socketpair (fd 3), attached
connections count from 1.
"""

import json
import os
import socket
import threading
import time

from st2reactor.container import rpc
from tests.helpers import STUBS, WrapperTestCase

# On its first start (REEXEC_CHILD unset) the sensor re-runs its own command
# line the way Werkzeug's reloader does (sys.executable + sys.argv, the
# environment copied, waiting for the child and exiting with its code). The
# child gets an unrelated pipe as fd 3, to prove that an fd 3 without
# SENSOR_RPC_FD is never taken for the sensor pipe.
REEXEC_SUBPROCESS = '''
import os
import subprocess
import sys

from st2reactor.sensor.base import Sensor


def note(text):
    with open(os.environ["MARKER"], "a") as f:
        f.write(text + "\\n")


class ReexecSensor(Sensor):
    def setup(self):
        self.child = os.environ.get("REEXEC_CHILD") == "1"
        self.stop = False
        self.sensor_service.dispatch("tests.event", {
            "event": "setup", "child": self.child, "pid": os.getpid(),
            "fd_env": os.environ.get("SENSOR_RPC_FD"),
            "has_socket_env": bool(os.environ.get("SENSOR_RPC_SOCKET")),
            "has_token_env": bool(os.environ.get("SENSOR_RPC_TOKEN"))})

    def run(self):
        if not self.child:
            env = os.environ.copy()
            env["REEXEC_CHILD"] = "1"
            r, w = os.pipe()

            def junk_fd3():
                os.dup2(r, 3)   # an unrelated, inheritable fd 3

            code = subprocess.call([sys.executable] + sys.argv, env=env, close_fds=False,
                                   preexec_fn=junk_fd3)
            note("parent: child exited %d" % code)
            sys.exit(code)
        fd3 = None
        try:
            os.fstat(3)
            fd3 = "open"
        except OSError:
            fd3 = "closed"
        self.sensor_service.dispatch("tests.event", {"event": "child-run", "pid": os.getpid(),
                                                     "ppid": os.getppid(), "fd3": fd3})
        import time
        while not self.stop:
            time.sleep(0.05)

    def cleanup(self):
        self.stop = True
        note("cleanup %s" % ("child" if self.child else "parent"))

    def add_trigger(self, trigger):
        self.sensor_service.dispatch("tests.event", {"event": "add", "ref": trigger["ref"],
                                                     "child": self.child})

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

# Re-exec in place (os.execv): same pid, fd 3 (close-on-exec) is gone, and
# SENSOR_RPC_FD too, so the new image attaches.
REEXEC_EXECV = '''
import os
import sys
import time

from st2reactor.sensor.base import Sensor


class ExecSensor(Sensor):
    def setup(self):
        self.image = 2 if os.environ.get("REEXEC_IMAGE") == "2" else 1
        self.stop = False
        self.sensor_service.dispatch("tests.event", {"event": "setup", "image": self.image,
                                                     "pid": os.getpid()})

    def run(self):
        if self.image == 1:
            os.environ["REEXEC_IMAGE"] = "2"
            os.execv(sys.executable, [sys.executable] + sys.argv)
        self.sensor_service.dispatch("tests.event", {"event": "run", "image": self.image,
                                                     "pid": os.getpid()})
        while not self.stop:
            time.sleep(0.05)

    def cleanup(self):
        self.stop = True
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup image %d\\n" % self.image)
''' + STUBS

# A sensor started with only SENSOR_RPC_SOCKET/SENSOR_RPC_TOKEN.
ATTACHED = '''
import os
import time

from st2reactor.sensor.base import Sensor


class AttachedSensor(Sensor):
    def setup(self):
        self.stop = False
        self.sensor_service.get_logger("x").info("setup in %d", os.getpid())

    def run(self):
        for i in range(3000):
            self.sensor_service.dispatch("tests.event", {"event": "bulk", "i": i})
        self.sensor_service.dispatch("tests.event", {"event": "done"})
        while not self.stop:
            time.sleep(0.05)

    def cleanup(self):
        self.stop = True
        with open(os.environ["MARKER"], "a") as f:
            f.write("cleanup\\n")

    def add_trigger(self, trigger):
        self.sensor_service.dispatch("tests.event", {"event": "add", "ref": trigger["ref"]})

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''

NEVER_RUNS = '''
import os

from st2reactor.sensor.base import Sensor


class NeverSensor(Sensor):
    def setup(self):
        with open(os.environ["MARKER"], "a") as f:
            f.write("setup\\n")

    def run(self):
        pass

    def cleanup(self):
        pass
''' + STUBS

TRIGGER = {"id": "1", "uid": "trigger:tests:t1:0", "ref": "tests.t1", "name": "t1",
           "pack": "tests", "type": "tests.event", "parameters": {}}


def events(fc, name):
    with fc.lock:
        return [(c, d["payload"]) for c, d in zip(fc.dispatch_conns, fc.dispatches)
                if isinstance(d.get("payload"), dict) and d["payload"].get("event") == name]


class AttachTests(WrapperTestCase):
    def test_reexecuted_child_attaches_and_dispatches_over_its_connection(self):
        fc = self.start(REEXEC_SUBPROCESS, "ReexecSensor")
        self.assertTrue(fc.wait_for(lambda: events(fc, "child-run"), 30), fc.stderr_text)

        setups = events(fc, "setup")
        by_child = {p["child"]: (c, p) for c, p in setups}
        self.assertEqual(sorted(by_child), [False, True], setups)
        parent_conn, parent = by_child[False]
        child_conn, child = by_child[True]
        # The first process took fd 3 and dropped SENSOR_RPC_FD from its
        # environment (so its child did not inherit it); both keep the
        # attach variables for further re-executions.
        self.assertEqual(parent_conn, 0)
        self.assertIsNone(parent["fd_env"])
        self.assertIsNone(child["fd_env"])
        self.assertTrue(parent["has_socket_env"] and parent["has_token_env"])
        self.assertTrue(child["has_socket_env"] and child["has_token_env"])
        self.assertNotEqual(parent["pid"], child["pid"])
        # The child dispatches over its attached connection, not the pipe.
        self.assertEqual(child_conn, 1)
        [(run_conn, run)] = events(fc, "child-run")
        self.assertEqual(run_conn, 1)
        self.assertEqual(run["ppid"], parent["pid"])
        self.assertEqual(run["fd3"], "open")   # an unrelated fd 3, ignored
        self.assertEqual([a["ok"] for a in fc.attaches], [True])
        self.assertEqual(fc.attaches[0]["conn"], 1)
        self.assertTrue(fc.conns[1].initialized and fc.conns[1].ready)
        self.assertTrue(any("attached to the sensor" in m for m in fc.log_messages("info")),
                        fc.logs)

        # Notifications for the attached process go over its connection.
        self.assertEqual(fc.notify_all("trigger.add", {"trigger": TRIGGER}), [0, 1])
        self.assertTrue(fc.wait_for(lambda: len(events(fc, "add")) == 2, 10), fc.stderr_text)
        self.assertEqual(sorted((c, p["child"]) for c, p in events(fc, "add")),
                         [(0, False), (1, True)])

        # Stop the child over its connection: it cleans up and exits 0, the
        # parent's subprocess.call returns 0 and the parent exits 0 too.
        fc.notify("shutdown", {"reason": "test"}, conn=1)
        self.assertExit(fc, 0, 15)
        self.assertEqual(self.marker_lines(),
                         ["cleanup child", "parent: child exited 0", "cleanup parent"])
        self.assertEqual(fc.acked, fc.dispatch_count)
        self.assertEqual(fc.log_messages("error"), [])

    def test_execv_in_place_attaches(self):
        fc = self.start(REEXEC_EXECV, "ExecSensor")
        self.assertTrue(fc.wait_for(lambda: events(fc, "run"), 30), fc.stderr_text)
        setups = events(fc, "setup")
        self.assertEqual([(c, p["image"]) for c, p in setups], [(0, 1), (1, 2)])
        self.assertEqual(setups[0][1]["pid"], setups[1][1]["pid"])  # same process
        [(conn, run)] = events(fc, "run")
        self.assertEqual((conn, run["image"]), (1, 2))
        # The exec closed the pipe (close-on-exec): EOF on connection 0.
        self.assertTrue(fc.wait_for(lambda: fc.conns[0].eof, 5))
        fc.terminate()
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup image 2"])

    def test_process_started_with_only_the_attach_socket(self):
        fc = self.start(ATTACHED, "AttachedSensor", use_fd=False, hold_acks_until_idle=0.3)
        self.assertTrue(fc.wait_ready(30), fc.stderr_text)
        self.assertTrue(fc.wait_for(lambda: events(fc, "done"), 30), fc.stderr_text)
        self.assertEqual([a["ok"] for a in fc.attaches], [True])
        # Pipelined over the attached connection, in order, window full.
        bulk = events(fc, "bulk")
        self.assertEqual(set(c for c, _ in bulk), {1})
        self.assertEqual([p["i"] for _, p in bulk], list(range(3000)))
        self.assertEqual(fc.max_unacked, 1024)
        self.assertTrue(any(m.startswith("setup in ") for m in fc.log_messages("info")))

        fc.notify("trigger.add", {"trigger": TRIGGER})
        self.assertTrue(fc.wait_for(lambda: events(fc, "add"), 10), fc.stderr_text)
        fc.notify("shutdown", {"reason": "test"})
        self.assertExit(fc, 0)
        self.assertEqual(self.marker_lines(), ["cleanup"])
        self.assertEqual(fc.acked, fc.dispatch_count)

    def test_wrong_token_is_refused(self):
        fc = self.start(NEVER_RUNS, "NeverSensor", use_fd=False, env_token="0" * 64)
        self.assertExit(fc, 1)
        err = fc.stderr_text
        self.assertIn("refused to attach", err)
        self.assertIn("attach refused", err)
        self.assertIn("-32040", err)
        self.assertIn("SENSOR_RPC_TOKEN", err)
        self.assertNotIn("Traceback", err)
        self.assertEqual([(a["ok"], a["token"]) for a in fc.attaches], [(False, "0" * 64)])
        self.assertEqual(fc.dispatches, [])
        self.assertEqual(self.marker_lines(), [])

    def test_missing_socket(self):
        missing = self.path("no-such-dir/rpc.sock")
        fc = self.start(NEVER_RUNS, "NeverSensor", use_fd=False, attach_socket=False,
                        extra_env={"SENSOR_RPC_SOCKET": missing, "SENSOR_RPC_TOKEN": "a" * 64})
        self.assertExit(fc, 1)
        err = fc.stderr_text
        self.assertIn("does not exist", err)
        self.assertIn(missing, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(self.marker_lines(), [])

    def test_nobody_listening(self):
        path = self.path("stale.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        fc = self.start(NEVER_RUNS, "NeverSensor", use_fd=False, attach_socket=False,
                        extra_env={"SENSOR_RPC_SOCKET": path, "SENSOR_RPC_TOKEN": "a" * 64})
        self.assertExit(fc, 1)
        self.assertIn("nobody listens", fc.stderr_text)

    def test_no_pipe_and_no_socket(self):
        fc = self.start(NEVER_RUNS, "NeverSensor", use_fd=False, attach_socket=False)
        self.assertExit(fc, 1)
        err = fc.stderr_text
        self.assertIn("neither SENSOR_RPC_FD nor SENSOR_RPC_SOCKET", err)
        self.assertNotIn("Traceback", err)

    def test_token_without_socket(self):
        fc = self.start(NEVER_RUNS, "NeverSensor", use_fd=False, attach_socket=False,
                        extra_env={"SENSOR_RPC_TOKEN": "a" * 64})
        self.assertExit(fc, 1)
        self.assertIn("SENSOR_RPC_TOKEN is set but SENSOR_RPC_SOCKET is not", fc.stderr_text)


class AttachClientTests(WrapperTestCase):
    """In-process: rpc.attach() against a listener of the test's own."""

    def _listener(self, answer):
        path = self.path("a.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        got = {}

        def serve():
            conn, _ = srv.accept()
            buf = b""
            while b"\n" not in buf:
                buf += conn.recv(4096)
            got["first"] = buf
            conn.sendall(answer)
            got["conn"] = conn
            srv.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        return path, got, t

    def test_frames_right_after_the_answer_are_not_lost(self):
        note = b'{"jsonrpc":"2.0","method":"trigger.add","params":{"trigger":{"ref":"a"}}}\n'
        path, got, t = self._listener(b'{"jsonrpc":"2.0","id":0,"result":{"attached":true}}\n'
                                      + note + note[:20])
        sock, rest = rpc.attach(path, "f" * 64, timeout=5)
        t.join(5)
        self.assertEqual(json.loads(got["first"]), {"jsonrpc": "2.0", "id": 0, "method": "attach",
                                                    "params": {"token": "f" * 64}})
        seen = []
        client = rpc.RpcClient(sock, initial_data=rest, attached=True)
        client.on_notification = lambda method, params: seen.append(params["trigger"]["ref"])
        client.start()
        got["conn"].sendall(note[20:])
        deadline = time.monotonic() + 5
        while len(seen) < 2 and time.monotonic() < deadline:
            rpc.real_sleep(0.01)
        self.assertEqual(seen, ["a", "a"])
        self.assertTrue(client.attached)
        client.close()
        got["conn"].close()

    def test_refusal_and_bad_answers(self):
        cases = [
            (b'{"jsonrpc":"2.0","id":0,"error":{"code":-32040,"message":"attach refused"}}\n',
             "refused to attach"),
            (b'{"jsonrpc":"2.0","id":0,"error":{"code":-32601,"message":"no such method"}}\n',
             "no such method"),
            (b'{"jsonrpc":"2.0","id":0,"result":{"attached":false}}\n', "unexpected answer"),
            (b'not json\n', "not JSON"),
            (b'', "without answering"),
        ]
        for answer, text in cases:
            path, got, t = self._listener(answer)
            if not answer:
                # Close without answering.
                def closer(got=got, t=t):
                    t.join(5)
                    got["conn"].close()
                threading.Thread(target=closer, daemon=True).start()
            with self.assertRaises(RuntimeError) as cm:
                rpc.attach(path, "f" * 64, timeout=5)
            self.assertIn(text, str(cm.exception))
            t.join(5)
            if "conn" in got:
                got["conn"].close()
            os.unlink(path)
