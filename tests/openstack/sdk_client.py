#!/usr/bin/env python3
"""The real openstacksdk against a running sensorcontainer.

    BASE=http://127.0.0.1:PORT KEY=sck_... python sdk_client.py

Runs the calls a Senlin / Masakari user makes and prints one JSON object
with what came back; any failing call raises (non-zero exit, traceback on
stderr). The Rust test asserts on the printed values.
"""
import json
import os
import warnings

import openstack
from openstack import exceptions

warnings.simplefilter("ignore")
BASE = os.environ["BASE"].rstrip("/")
conn = openstack.connection.Connection(
    auth_type="admin_token",
    auth={"endpoint": BASE + "/v1", "token": os.environ["KEY"]},
    clustering_endpoint_override=BASE + "/v1",
    instance_ha_endpoint_override=BASE + "/v1",
)
out = {}

# ---- Senlin receivers
for name in ["zeta", "alpha", "mid"]:
    conn.clustering.create_receiver(
        name=name, type="webhook", cluster_id="cluster-" + name,
        action="CLUSTER_SCALE_OUT", params={"count": "1"})
out["sorted_asc"] = [r.name for r in conn.clustering.receivers(sort="name:asc")]
out["sorted_desc"] = [r.name for r in conn.clustering.receivers(sort="name:desc")]
r = conn.clustering.create_receiver(
    name="web-1", type="webhook", cluster_id="c1",
    action="CLUSTER_SCALE_OUT", params={"count": "1", "zone": "a"})
out["created"] = {"id": r.id, "name": r.name, "channel": r.channel, "params": r.params}
g = conn.clustering.get_receiver(r.id)
out["got"] = {"id": g.id, "cluster_id": g.cluster_id, "action": g.action, "type": g.type}
out["found_by_name"] = conn.clustering.find_receiver("web-1").id
out["found_by_short_id"] = conn.clustering.find_receiver(r.id[:8]).id
out["find_missing"] = conn.clustering.find_receiver("nope", ignore_missing=True)
try:
    conn.clustering.get_receiver("does-not-exist")
    out["get_missing"] = "no error"
except exceptions.NotFoundException:
    out["get_missing"] = "NotFoundException"
u = conn.clustering.update_receiver(r.id, name="web-2", params={"count": "2"})
out["updated"] = {"name": u.name, "params": u.params}
out["after_update"] = conn.clustering.get_receiver(r.id).name
conn.clustering.delete_receiver(r.id)
out["after_delete"] = conn.clustering.find_receiver(r.id, ignore_missing=True)
keep = conn.clustering.create_receiver(
    name="keep", type="webhook", cluster_id="c9", action="CLUSTER_RESIZE",
    params={"count": "1", "strict": "yes"})
out["keep_alarm_url"] = keep.channel["alarm_url"]

# ---- Masakari segments, hosts, notifications
seg = conn.instance_ha.create_segment(
    name="seg-1", recovery_method="auto", service_type="COMPUTE")
host = conn.instance_ha.create_host(
    seg.uuid, name="compute-1", type="COMPUTE", control_attributes="ssh")
out["host"] = {"uuid": host.uuid, "segment": host.failover_segment_id}
n = conn.instance_ha.create_notification(
    type="PROCESS", hostname="compute-1", generated_time="2026-12-01T10:00:00",
    payload={"process_name": "nova-compute", "event": "STOPPED"})
out["notification"] = {"uuid": n.notification_uuid, "status": n.status,
                       "source_host_uuid": n.source_host_uuid}
try:
    conn.instance_ha.create_notification(
        type="PROCESS", hostname="compute-1",
        generated_time="2026-12-01T10:01:00",
        payload={"process_name": "nova-compute", "event": "STOPPED"})
    out["duplicate"] = "accepted"
except exceptions.ConflictException as e:
    out["duplicate"] = "ConflictException"
out["listed_new"] = [x.notification_uuid for x in conn.instance_ha.notifications(status="new")]
out["listed_filtered"] = [x.notification_uuid for x in conn.instance_ha.notifications(
    status="new", type="PROCESS", source_host_uuid=host.uuid,
    generated_since="2026-12-01T09:00:00")]
out["listed_since_later"] = [x.notification_uuid for x in conn.instance_ha.notifications(
    generated_since="2026-12-01T11:00:00")]
got = conn.instance_ha.get_notification(n.notification_uuid)
out["got_notification"] = {"uuid": got.notification_uuid, "payload": got.payload,
                           "type": got.type, "status": got.status}
print(json.dumps(out))
