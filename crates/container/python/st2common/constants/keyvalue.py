"""Datastore scope names, as StackStorm's ``st2common.constants.keyvalue``
defines them.

Note: sensorcontainer's ``SensorService`` datastore methods accept only
``SYSTEM_SCOPE`` (``"system"``); any other scope raises ``ValueError``.
"""

__all__ = [
    "ALL_SCOPE",
    "ALLOWED_SCOPES",
    "DATASTORE_KEY_SEPARATOR",
    "DATASTORE_PARENT_SCOPE",
    "DATASTORE_SCOPE_SEPARATOR",
    "FULL_SYSTEM_SCOPE",
    "FULL_USER_SCOPE",
    "SYSTEM_SCOPE",
    "SYSTEM_SCOPES",
    "USER_SCOPE",
    "USER_SCOPES",
    "USER_SEPARATOR",
]

ALL_SCOPE = "all"

# Every datastore scope lives under this parent ("st2kv.system", ...).
DATASTORE_PARENT_SCOPE = "st2kv"
DATASTORE_SCOPE_SEPARATOR = "."

SYSTEM_SCOPE = "system"
FULL_SYSTEM_SCOPE = DATASTORE_PARENT_SCOPE + DATASTORE_SCOPE_SEPARATOR + SYSTEM_SCOPE
SYSTEM_SCOPES = [SYSTEM_SCOPE]

USER_SCOPE = "user"
FULL_USER_SCOPE = DATASTORE_PARENT_SCOPE + DATASTORE_SCOPE_SEPARATOR + USER_SCOPE
USER_SCOPES = [USER_SCOPE]

# Separates the user name from the key name in user-scoped keys.
USER_SEPARATOR = ":"

# Separates the parts of a key name ("<pack>.<sensor>:<name>").
DATASTORE_KEY_SEPARATOR = ":"

ALLOWED_SCOPES = [SYSTEM_SCOPE, USER_SCOPE, FULL_SYSTEM_SCOPE, FULL_USER_SCOPE]
