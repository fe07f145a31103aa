"""SensorService and the RPC client, in process."""

import io
import json
import logging
import socket
import threading
import time
import unittest

from st2reactor.container import rpc
from st2reactor.container.sensor_service import (
    DatastoreError,
    DatastoreNotAvailableError,
    KeyValuePair,
    RpcLogHandler,
    SensorService,
)
from st2reactor.container.sensor_wrapper import SensorService as ST2PathSensorService


class StubClient(object):
    """Records calls; answers requests from a table."""

    def __init__(self, answers=None):
        self.calls = []
        self.dispatches = []
        self.logs = []
        self.answers = answers or {}
        self.closed = False

    def call(self, method, params=None, timeout=None):
        self.calls.append((method, params))
        answer = self.answers.get(method, rpc.RpcError(-32601, "method not found"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    def dispatch(self, trigger, payload=None, trace_tag=None, trace_context=None):
        self.dispatches.append((trigger, payload, trace_tag, trace_context))

    def log(self, level, message, logger=None):
        self.logs.append((level, message, logger))
        return True


class TraceContext(object):
    def __init__(self, trace_tag=None, id_=None):
        self.trace_tag = trace_tag
        self.id = id_


class SensorServiceTests(unittest.TestCase):
    def setUp(self):
        self.client = StubClient()
        self.service = SensorService(self.client, "hello_st2", "HelloSensor")

    def test_st2_import_path(self):
        self.assertIs(ST2PathSensorService, SensorService)

    def test_dispatch_returns_none_and_forwards(self):
        self.assertIsNone(self.service.dispatch("hello_st2.event1", {"a": 1}))
        self.assertIsNone(self.service.dispatch(trigger="hello_st2.event1", payload=None,
                                                trace_tag="tag"))
        self.assertIsNone(self.service.dispatch("hello_st2.event1", {"a": 1}, trace_tag=""))
        self.assertEqual(self.client.dispatches, [
            ("hello_st2.event1", {"a": 1}, None, None),
            ("hello_st2.event1", None, "tag", None),
            ("hello_st2.event1", {"a": 1}, None, None),
        ])

    def test_dispatch_with_context(self):
        svc = self.service
        self.assertIsNone(svc.dispatch_with_context("p.t", {"x": 1},
                                                    trace_context={"trace_tag": "a"}))
        svc.dispatch_with_context("p.t", {"x": 2}, trace_context=TraceContext("b", "id-1"))
        svc.dispatch_with_context(trigger={"type": "p.t", "parameters": {}}, payload=None)
        self.assertEqual(self.client.dispatches, [
            ("p.t", {"x": 1}, None, {"trace_tag": "a"}),
            ("p.t", {"x": 2}, None, {"trace_tag": "b", "id": "id-1"}),
            ({"type": "p.t", "parameters": {}}, None, None, None),
        ])

    def test_get_logger(self):
        logger = self.service.get_logger("HelloSensor")
        self.assertIsInstance(logger, logging.Logger)
        self.assertEqual(logger.name, "SensorWrapper.hello_st2.HelloSensor.HelloSensor")
        self.assertTrue(logger.propagate)

    def test_scope_other_than_system_raises_before_any_rpc(self):
        for fn in (lambda: self.service.get_value("k", scope="user"),
                   lambda: self.service.set_value("k", "v", scope="st2kv.user"),
                   lambda: self.service.delete_value("k", scope="user")):
            with self.assertRaises(ValueError):
                fn()
        self.assertEqual(self.client.calls, [])

    def test_datastore_not_available(self):
        svc = self.service
        for fn, method in ((lambda: svc.get_value("count"), "kv.get"),
                           (lambda: svc.set_value("count", 1), "kv.set"),
                           (lambda: svc.delete_value("count"), "kv.delete"),
                           (lambda: svc.list_values(), "kv.list"),
                           (lambda: svc.get_user_info(), "user.info")):
            with self.assertRaises(NotImplementedError) as ctx:
                fn()
            self.assertIsInstance(ctx.exception, DatastoreNotAvailableError)
            self.assertIn("not available in this version", str(ctx.exception))
            self.assertEqual(self.client.calls[-1][0], method)

    def test_local_names_are_prefixed(self):
        client = StubClient({"kv.get": {"name": "x", "value": "5"}, "kv.set": True,
                             "kv.delete": True, "kv.list": []})
        svc = SensorService(client, "hello_st2", "HelloSensor")
        self.assertEqual(svc.get_value("count"), "5")
        svc.get_value("global.count", local=False, decrypt=True)
        self.assertTrue(svc.set_value("count", 3, ttl=60))
        svc.set_value("count", 3, ttl=0, encrypt=True)
        self.assertTrue(svc.delete_value("count"))
        svc.list_values()
        svc.list_values(local=False, prefix="abc", limit=5, offset=10)
        svc.list_values(prefix="c")
        self.assertEqual(client.calls, [
            ("kv.get", {"name": "hello_st2.HelloSensor:count", "scope": "system",
                        "decrypt": False}),
            ("kv.get", {"name": "global.count", "scope": "system", "decrypt": True}),
            ("kv.set", {"name": "hello_st2.HelloSensor:count", "value": "3", "scope": "system",
                        "encrypt": False, "ttl": 60}),
            ("kv.set", {"name": "hello_st2.HelloSensor:count", "value": "3", "scope": "system",
                        "encrypt": True}),
            ("kv.delete", {"name": "hello_st2.HelloSensor:count", "scope": "system"}),
            ("kv.list", {"prefix": "hello_st2.HelloSensor:", "limit": 100, "offset": 0,
                         "scope": "system"}),
            ("kv.list", {"prefix": "abc", "limit": 5, "offset": 10, "scope": "system"}),
            ("kv.list", {"prefix": "hello_st2.HelloSensor:c", "limit": 100, "offset": 0,
                         "scope": "system"}),
        ])

    def test_results_are_mapped_like_st2(self):
        client = StubClient({
            "kv.get": None,
            "kv.delete": False,
            "kv.list": [{"name": "hello_st2.HelloSensor:a", "value": "1", "secret": False,
                         "expire_timestamp": None}],
        })
        svc = SensorService(client, "hello_st2", "HelloSensor")
        self.assertIsNone(svc.get_value("missing"))
        self.assertFalse(svc.delete_value("missing"))
        items = svc.list_values()
        self.assertEqual(len(items), 1)
        self.assertIsInstance(items[0], KeyValuePair)
        self.assertEqual(items[0].name, "hello_st2.HelloSensor:a")
        self.assertEqual(items[0].value, "1")
        self.assertFalse(items[0].secret)
        self.assertIsNone(items[0].expire_timestamp)

    def test_other_datastore_errors_follow_st2(self):
        err = rpc.RpcError(-32020, "datastore error")
        client = StubClient({"kv.get": err, "kv.delete": err, "kv.set": err})
        svc = SensorService(client, "p", "C", logger=logging.getLogger("test.quiet"))
        logging.getLogger("test.quiet").disabled = True
        self.assertIsNone(svc.get_value("x"))       # StackStorm: logged, None
        self.assertFalse(svc.delete_value("x"))     # StackStorm: logged, False
        with self.assertRaises(DatastoreError):     # StackStorm: raises
            svc.set_value("x", 1)


class LogHandlerTests(unittest.TestCase):
    def test_levels_and_names(self):
        client = StubClient()
        handler = RpcLogHandler(client, strip_prefixes=("SensorWrapper.p.C.",))
        logger = logging.getLogger("SensorWrapper.p.C.mine")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
        try:
            logger.debug("d")
            logger.info("i %d", 1)
            logger.warning("w")
            logger.error("e")
            logger.critical("c")
            logger.log(25, "custom")
        finally:
            logger.removeHandler(handler)
        self.assertEqual(client.logs, [
            ("debug", "d", "mine"), ("info", "i 1", "mine"), ("warning", "w", "mine"),
            ("error", "e", "mine"), ("critical", "c", "mine"), ("info", "custom", "mine"),
        ])


def _pair(window=rpc.DEFAULT_WINDOW, max_frame_bytes=rpc.DEFAULT_MAX_FRAME_BYTES):
    a, b = socket.socketpair()
    client = rpc.RpcClient(a, window=window, max_frame_bytes=max_frame_bytes,
                           stderr=io.StringIO())
    client.start()
    return client, b


def _read_lines(sock, n, timeout=5.0):
    sock.settimeout(timeout)
    buf = b""
    while buf.count(b"\n") < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return [json.loads(l) for l in buf.split(b"\n") if l]


class RpcClientTests(unittest.TestCase):
    def setUp(self):
        self._clients = []

    def tearDown(self):
        for client, peer in self._clients:
            peer.close()
            client.close()
            deadline = time.monotonic() + 5
            while not client.closed and time.monotonic() < deadline:
                time.sleep(0.01)
            client._sock.close()

    def pair(self, **kwargs):
        client, peer = _pair(**kwargs)
        self._clients.append((client, peer))
        return client, peer

    def test_call_and_notification(self):
        client, peer = self.pair()
        try:
            got = []
            client.on_notification = lambda m, p: got.append((m, p))
            result = {}

            def caller():
                result["v"] = client.call("init", {})

            t = threading.Thread(target=caller)
            t.start()
            req = _read_lines(peer, 1)[0]
            self.assertEqual(req["method"], "init")
            peer.sendall(b'{"jsonrpc":"2.0","method":"trigger.add","params":{"trigger":{"id":1}}}\n'
                         + json.dumps({"jsonrpc": "2.0", "id": req["id"],
                                       "result": {"config": {}}}).encode() + b"\n")
            t.join(5)
            self.assertEqual(result["v"], {"config": {}})
            self.assertEqual(got, [("trigger.add", {"trigger": {"id": 1}})])
        finally:
            peer.close()

    def test_window_blocks_until_acks(self):
        client, peer = self.pair(window=4)
        try:
            done = threading.Event()

            def sender():
                for i in range(6):
                    client.dispatch("p.t", {"i": i})
                done.set()

            t = threading.Thread(target=sender)
            t.start()
            reqs = _read_lines(peer, 4)
            self.assertEqual(len(reqs), 4)
            self.assertFalse(done.wait(0.3), "dispatch must block on a full window")
            self.assertEqual(client.inflight, 4)
            peer.sendall(b"".join(json.dumps({"jsonrpc": "2.0", "id": r["id"],
                                              "result": {"id": "x"}}).encode() + b"\n"
                                  for r in reqs[:2]))
            self.assertTrue(done.wait(5))
            t.join(5)
            reqs2 = _read_lines(peer, 2)
            self.assertEqual([r["params"]["payload"]["i"] for r in reqs2], [4, 5])
            self.assertFalse(client.wait_acks(0.1))
            peer.sendall(b"".join(json.dumps({"jsonrpc": "2.0", "id": r["id"],
                                              "result": {"id": "x"}}).encode() + b"\n"
                                  for r in reqs[2:] + reqs2))
            self.assertTrue(client.wait_acks(5))
            self.assertEqual(client.max_inflight, 4)
        finally:
            peer.close()

    def test_unusual_payload_values_are_encoded(self):
        import datetime
        import decimal
        client, peer = self.pair()
        try:
            client.dispatch("p.t", {
                "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
                "tags": {"a"},
                "raw": b"bytes",
                "n": decimal.Decimal("3"),
                "nan": float("nan"),
                "tuple": (1, 2),
            })
            req = _read_lines(peer, 1)[0]
            self.assertEqual(req["params"]["payload"], {
                "when": "2024-01-02T03:04:05", "tags": ["a"], "raw": "bytes", "n": 3,
                "nan": None, "tuple": [1, 2]})
        finally:
            peer.close()

    def test_eof_fails_calls_and_unblocks(self):
        client, peer = self.pair()
        closed = threading.Event()
        client.on_close = lambda reason: closed.set()
        errors = []

        def caller():
            try:
                client.call("kv.get", {"name": "x"})
            except rpc.ConnectionClosed as exc:
                errors.append(exc)

        t = threading.Thread(target=caller)
        t.start()
        _read_lines(peer, 1)
        peer.close()
        t.join(5)
        self.assertTrue(closed.wait(5))
        self.assertEqual(len(errors), 1)
        self.assertIsNone(client.dispatch("p.t", {}))  # dropped, not raised
        self.assertEqual(client.dropped, 1)

    def test_frame_in_runtime(self):
        import sys
        self.assertFalse(rpc.frame_in_runtime(sys._getframe()))
        # A frame running code of rpc.py, anywhere up the stack, counts.
        inner = type("F", (), {"f_code": rpc.RpcClient.dispatch.__code__, "f_back": None})()
        outer = type("F", (), {"f_code": self.test_frame_in_runtime.__code__,
                               "f_back": inner})()
        self.assertTrue(rpc.frame_in_runtime(outer))

    def test_logging_on_the_reader_thread_never_blocks(self):
        # A dispatching thread is blocked writing (the peer does not read).
        # A log call on the reader thread (here: from a notification hook)
        # must return at once, and its record must reach the peer later.
        client, peer = self.pair()
        logger = logging.getLogger("test.reader.logging")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        handler = RpcLogHandler(client)
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        returned = threading.Event()

        def on_notification(method, params):
            logger.info("logged on the reader thread: %s", method)
            returned.set()

        client.on_notification = on_notification
        blob = "x" * 4096

        def flood():
            for i in range(600):  # ~2.4 MB: far more than the socket buffer
                client.dispatch("p.t", {"i": i, "blob": blob})

        flooder = threading.Thread(target=flood, daemon=True)
        flooder.start()
        time.sleep(0.5)
        self.assertTrue(flooder.is_alive(), "the flooder should be blocked writing")
        peer.sendall(b'{"jsonrpc":"2.0","method":"test.ping","params":{}}\n')
        self.assertTrue(returned.wait(2), "logging on the reader thread blocked")

        # Now read everything: dispatches and the log record all arrive.
        peer.settimeout(10)
        buf = b""
        seen_log = False
        count = 0
        while not (seen_log and count == 600):
            chunk = peer.recv(1 << 20)
            self.assertTrue(chunk)
            buf += chunk
            lines = buf.split(b"\n")
            buf = lines.pop()
            for line in lines:
                msg = json.loads(line)
                if msg.get("method") == "log":
                    self.assertEqual(msg["params"]["message"], "logged on the reader thread: "
                                                               "test.ping")
                    seen_log = True
                elif msg.get("method") == "dispatch":
                    count += 1
        flooder.join(5)

    def test_concurrent_dispatch_and_logs(self):
        client, peer = self.pair(window=64)
        try:
            stop = threading.Event()
            received = []

            def server():
                buf = b""
                peer.settimeout(10)
                while len(received) < 4 * 500 + 4 * 50:
                    chunk = peer.recv(65536)
                    if not chunk:
                        break
                    buf += chunk
                    lines = buf.split(b"\n")
                    buf = lines.pop()
                    acks = []
                    for line in lines:
                        msg = json.loads(line)
                        received.append(msg)
                        if "id" in msg:
                            acks.append(json.dumps({"jsonrpc": "2.0", "id": msg["id"],
                                                    "result": {"id": "x"}}).encode() + b"\n")
                    if acks:
                        peer.sendall(b"".join(acks))
                stop.set()

            st = threading.Thread(target=server)
            st.start()

            def work(k):
                for i in range(500):
                    client.dispatch("p.t", {"k": k, "i": i})
                    if i % 10 == 0:
                        client.log("info", "k=%d i=%d" % (k, i))

            ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
            self.assertTrue(client.wait_acks(10))
            st.join(10)
            dispatches = [m for m in received if m.get("method") == "dispatch"]
            logs = [m for m in received if m.get("method") == "log"]
            self.assertEqual(len(dispatches), 2000)
            self.assertEqual(len(logs), 200)
            self.assertEqual(len({m["id"] for m in dispatches}), 2000)
            self.assertLessEqual(client.max_inflight, 64)
        finally:
            peer.close()


if __name__ == "__main__":
    unittest.main()
