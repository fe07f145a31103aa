"""Stands in for StackStorm's rules engine on its bus, with kombu as st2
uses it: a durable queue bound to the topic exchange
<prefix>.trigger_instances_dispatch with '#', accepting only pickle.

  rules_engine.py URL declare                 declare exchange + queue
  rules_engine.py URL publish FILE...         publish raw pickled bodies
  rules_engine.py URL consume N OUT [SECS]    take N messages, write OUT
  rules_engine.py URL drain OUT [IDLE]        take messages until none came
                                              for IDLE seconds (2), write OUT
  rules_engine.py URL hint                    as st2 on a trigger change:
                                              one message on st2.trigger
  rules_engine.py URL watch QUEUE SECS        as st2's sensor container's
                                              trigger watcher: consume an
                                              exclusive QUEUE on st2.trigger

Each consumed body must be a dict with exactly trigger, payload and
trace_context (st2's TriggerInstanceDispatcher reads those three); OUT gets
one JSON line per message: {"body": ..., "content_type", "delivery_mode"}.
"""
import json
import os
import sys

from kombu import Connection, Exchange, Queue

PREFIX = os.environ.get("ST2_PREFIX", "st2")
EXCHANGE = Exchange(PREFIX + ".trigger_instances_dispatch", type="topic", durable=True)
QUEUE = Queue("sc_test.rules_engine", EXCHANGE, routing_key="#", durable=True)


def main():
    url, mode = sys.argv[1], sys.argv[2]
    # Publisher confirms: a persistent message counts as published only
    # once the broker has it on disk (it survives a broker crash then).
    with Connection(url, connect_timeout=10, transport_options={"confirm_publish": True}) as conn:
        if mode == "declare":
            QUEUE(conn.default_channel).declare()
        elif mode == "publish":
            producer = conn.Producer(serializer=None)
            for path in sys.argv[3:]:
                with open(path, "rb") as f:
                    body = f.read()
                producer.publish(
                    body,
                    exchange=EXCHANGE,
                    routing_key="trigger_instance",
                    content_type="application/x-python-serialize",
                    content_encoding="binary",
                    delivery_mode=2,
                    declare=[QUEUE],
                )
        elif mode in ("consume", "drain"):
            if mode == "consume":
                want, out = int(sys.argv[3]), sys.argv[4]
                secs = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
                idle = secs
            else:
                want, out, secs = None, sys.argv[3], 300.0
                idle = float(sys.argv[4]) if len(sys.argv) > 4 else 2.0
            got = []

            def on_message(body, message):
                if not (isinstance(body, dict) and set(body) == {"trigger", "payload", "trace_context"}):
                    sys.exit("bad body: %r" % (body,))
                got.append({
                    "body": body,
                    "content_type": message.content_type,
                    "delivery_mode": message.properties.get("delivery_mode"),
                })
                message.ack()

            with conn.Consumer(QUEUE, callbacks=[on_message], accept=["pickle"]):
                import time
                deadline = time.time() + secs
                last = time.time()
                while (want is None or len(got) < want) and time.time() < deadline:
                    if time.time() - last > idle:
                        break
                    try:
                        conn.drain_events(timeout=0.5)
                        last = time.time()
                    except Exception as e:  # socket.timeout
                        if "timed out" not in str(e):
                            raise
            with open(out, "w") as f:
                for g in got:
                    f.write(json.dumps(g) + "\n")
            if want is not None and len(got) < want:
                sys.exit("got %d of %d messages" % (len(got), want))
        elif mode == "hint":
            trigger = Exchange(PREFIX + ".trigger", type="topic", durable=True)
            # st2 sends a pickled mongoengine document; only its arrival matters.
            conn.Producer(serializer="pickle").publish(
                {"id": "hint"}, exchange=trigger, routing_key="create", declare=[trigger])
        elif mode == "watch":
            import time
            name, secs = sys.argv[3], float(sys.argv[4])
            trigger = Exchange(PREFIX + ".trigger", type="topic", durable=True)
            q = Queue(name, trigger, routing_key="#", exclusive=True, auto_delete=True)
            with conn.Consumer(q, callbacks=[lambda body, message: message.ack()], accept=["pickle"]):
                print("watching", flush=True)
                deadline = time.time() + secs
                while time.time() < deadline:
                    try:
                        conn.drain_events(timeout=0.5)
                    except Exception as e:
                        if "timed out" not in str(e):
                            raise
        else:
            sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
