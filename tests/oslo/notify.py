"""Publishes notifications with the real oslo.messaging notifier, as an
OpenStack service does.

  notify.py TRANSPORT_URL DRIVER FILE

DRIVER is messagingv2 (the 2.0 envelope) or messaging (v1). FILE is JSON:
a list of {"priority": "info"|"error"|..., "publisher_id", "event_type",
"payload", "context": {"user", "project_id", "auth_token", "request_id"}}. Each becomes one Notifier(...).<priority>(...)
call, in order, on topic "notifications" of exchange "openstack" (oslo's
defaults), unless the environment sets OSLO_EXCHANGE / OSLO_TOPIC.
"""
import json
import os
import sys

from oslo_config import cfg
from oslo_context import context as oslo_context
import oslo_messaging


def main():
    url, driver, path = sys.argv[1], sys.argv[2], sys.argv[3]
    oslo_messaging.set_transport_defaults(os.environ.get("OSLO_EXCHANGE", "openstack"))
    conf = cfg.ConfigOpts()
    conf([], project="sc-test")
    transport = oslo_messaging.get_notification_transport(conf, url=url)
    with open(path) as f:
        notes = json.load(f)
    notifiers = {}
    for n in notes:
        pub = n["publisher_id"]
        if pub not in notifiers:
            notifiers[pub] = oslo_messaging.Notifier(
                transport, driver=driver, publisher_id=pub,
                topics=[os.environ.get("OSLO_TOPIC", "notifications")], retry=3)
        # As a service does: a RequestContext (oslo drops a plain dict),
        # which the notifier redacts and flattens into _context_* fields.
        c = n.get("context", {})
        ctxt = oslo_context.RequestContext(
            user_id=c.get("user"), project_id=c.get("project_id"),
            auth_token=c.get("auth_token"), request_id=c.get("request_id"))
        getattr(notifiers[pub], n["priority"])(ctxt, n["event_type"], n["payload"])
    transport.cleanup()


if __name__ == "__main__":
    main()
