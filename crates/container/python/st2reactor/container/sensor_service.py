"""The ``SensorService`` handed to every sensor, with StackStorm's signatures.

StackStorm's class lives in ``st2reactor.container.sensor_wrapper``; that
module re-exports this one so both import paths work.
"""

import logging

from st2reactor.container import rpc as _rpc

__all__ = [
    "SensorService",
    "KeyValuePair",
    "DatastoreError",
    "DatastoreNotAvailableError",
    "RpcLogHandler",
    "SYSTEM_SCOPE",
    "DATASTORE_NAME_SEPARATOR",
    "LOGGER_NAME_PREFIX",
]

SYSTEM_SCOPE = "system"
DATASTORE_NAME_SEPARATOR = ":"
DEFAULT_LIST_LIMIT = 100  # StackStorm's api.max_page_size default
LOGGER_NAME_PREFIX = "SensorWrapper"


class DatastoreError(RuntimeError):
    """The container answered a datastore request with an error."""

    def __init__(self, message, code=None, data=None):
        super(DatastoreError, self).__init__(message)
        self.code = code
        self.data = data


class DatastoreNotAvailableError(DatastoreError, NotImplementedError):
    """The container does not implement the datastore (it answered -32601)."""


class KeyValuePair(object):
    """A datastore item as ``list_values`` returns it (StackStorm's client
    model exposes the same attributes)."""

    def __init__(self, name=None, value=None, secret=False, expire_timestamp=None,
                 scope=SYSTEM_SCOPE, **extra):
        self.id = name
        self.name = name
        self.value = value
        self.secret = bool(secret)
        self.encrypted = bool(secret)
        self.expire_timestamp = expire_timestamp
        self.scope = scope
        for key, val in extra.items():
            if not key.startswith("_"):
                setattr(self, key, val)

    @classmethod
    def from_dict(cls, item):
        if isinstance(item, KeyValuePair):
            return item
        if not isinstance(item, dict):
            raise DatastoreError("unexpected datastore item from the container: %r" % (item,))
        return cls(**{str(k): v for k, v in item.items()})

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    def __repr__(self):
        return "<KeyValuePair name=%r value=%r secret=%r expire_timestamp=%r>" % (
            self.name, "********" if self.secret else self.value, self.secret,
            self.expire_timestamp)

    def __eq__(self, other):
        return isinstance(other, KeyValuePair) and self.to_dict() == other.to_dict()

    __hash__ = None


class SensorService(object):
    """Instance of this class is passed to the sensor instance and exposes
    "public" methods which can be called by the sensor."""

    DATASTORE_NAME_SEPARATOR = DATASTORE_NAME_SEPARATOR

    def __init__(self, client, pack, class_name, logger=None):
        """
        :param client: the RPC client (``rpc.RpcClient``), or None (then
            dispatches and datastore calls are not available).
        :param pack: the sensor's pack ref.
        :param class_name: the sensor's class name.
        """
        self._client = client
        self._pack = pack
        self._class_name = class_name
        self._logger_prefix = "%s.%s.%s" % (LOGGER_NAME_PREFIX, pack, class_name)
        self._logger = logger or logging.getLogger(self._logger_prefix)

    # ----------------------------------------------------------------- logging

    def get_logger(self, name):
        """Retrieve an instance of a logger to be used by the sensor class.

        Its records reach the container log (level and message), tagged with
        the sensor ref.
        """
        logger = logging.getLogger("%s.%s" % (self._logger_prefix, name))
        logger.propagate = True
        return logger

    # ---------------------------------------------------------------- dispatch

    def dispatch(self, trigger, payload=None, trace_tag=None):
        """Dispatch a trigger instance.

        :param trigger: reference of the trigger type (``pack.name``), of a
            trigger (``pack.<uuid>``), or a trigger dict.
        :param payload: the event (a dict, or None).
        :param trace_tag: tag to find the trigger instance by; optional.

        Pipelined: returns None without waiting for the container's answer. A
        rejected dispatch (unknown trigger, payload failing the schema, payload
        not a dict) is logged through the container log with the reason.
        """
        client = self._client
        if client is None:
            _no_client("dispatch")
        # StackStorm: an empty trace tag means no trace context.
        client.dispatch(trigger, payload, trace_tag if trace_tag else None, None)
        return None

    def dispatch_with_context(self, trigger, payload=None, trace_context=None):
        """Dispatch a trigger instance with a trace context.

        :param trace_context: a dict (``{"trace_tag": ..., "id": ...}``) or an
            object with ``trace_tag`` / ``id`` attributes (StackStorm's
            ``TraceContext``).
        """
        client = self._client
        if client is None:
            _no_client("dispatch_with_context")
        client.dispatch(trigger, payload, None, _trace_context_to_dict(trace_context))
        return None

    # --------------------------------------------------- datastore management

    def list_values(self, local=True, prefix=None, limit=None, offset=None):
        """Retrieve datastore items; ``local`` restricts them to this sensor's
        namespace (``<pack>.<ClassName>:``). Returns a list of ``KeyValuePair``
        objects (``.name`` is the full key, prefix included)."""
        key_prefix = self._get_full_key_prefix(local=local, prefix=prefix)
        params = {
            "prefix": key_prefix,
            "limit": int(limit) if limit else DEFAULT_LIST_LIMIT,
            "offset": int(offset) if offset else 0,
            "scope": SYSTEM_SCOPE,
        }
        result = self._kv_call("kv.list", params, "list_values(prefix=%r)" % (key_prefix,))
        if result is None:
            return []
        if isinstance(result, dict):
            result = result.get("items", [])
        return [KeyValuePair.from_dict(item) for item in result]

    def get_value(self, name, local=True, scope=SYSTEM_SCOPE, decrypt=False):
        """Retrieve a value; returns a str, or None when missing or expired."""
        _check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        params = {"name": name, "scope": scope, "decrypt": bool(decrypt)}
        try:
            result = self._kv_call("kv.get", params, "get_value(%r)" % (name,))
        except DatastoreNotAvailableError:
            raise
        except DatastoreError as exc:
            # StackStorm logs the failure and returns None.
            self._logger.exception('Exception retrieving value from datastore (name=%s): %s',
                                   name, exc)
            return None
        if result is None:
            return None
        if isinstance(result, dict):
            return result.get("value")
        return result

    def set_value(self, name, value, ttl=None, local=True, scope=SYSTEM_SCOPE, encrypt=False):
        """Store ``str(value)``; ``ttl`` (seconds) applies only when truthy.
        Returns True."""
        _check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        params = {"name": name, "value": str(value), "scope": scope, "encrypt": bool(encrypt)}
        if ttl:
            params["ttl"] = int(ttl)
        self._kv_call("kv.set", params, "set_value(%r)" % (name,))
        return True

    def delete_value(self, name, local=True, scope=SYSTEM_SCOPE):
        """Delete a value; True if something was deleted, False if not."""
        _check_scope(scope)
        name = self._get_full_key_name(name=name, local=local)
        params = {"name": name, "scope": scope}
        try:
            result = self._kv_call("kv.delete", params, "delete_value(%r)" % (name,))
        except DatastoreNotAvailableError:
            raise
        except DatastoreError as exc:
            # StackStorm logs the failure and returns False.
            self._logger.exception('Exception deleting value from datastore (name=%s): %s',
                                   name, exc)
            return False
        if isinstance(result, dict):
            return bool(result.get("deleted", False))
        return bool(result)

    def get_user_info(self):
        """Information about the user the sensor acts as (StackStorm asks the
        API); served by the container's ``user.info`` request."""
        return self._kv_call("user.info", {}, "get_user_info()")

    # ------------------------------------------------------------------ helpers

    def _get_local_key_name_prefix(self):
        return "%s.%s%s" % (self._pack, self._class_name, self.DATASTORE_NAME_SEPARATOR)

    def _get_full_key_name(self, name, local):
        if local:
            return self._get_local_key_name_prefix() + name
        return name

    def _get_full_key_prefix(self, local, prefix=None):
        if local:
            key_prefix = self._get_local_key_name_prefix()
            if prefix:
                key_prefix += prefix
            return key_prefix
        return prefix

    def _kv_call(self, method, params, what):
        client = self._client
        if client is None:
            raise DatastoreNotAvailableError(
                "The datastore is not available: this SensorService has no connection to the "
                "sensor container (%s)" % (what,))
        try:
            return client.call(method, params)
        except _rpc.ConnectionClosed as exc:
            raise DatastoreError("%s failed: %s" % (what, exc.message))
        except _rpc.RpcError as exc:
            if exc.code == _rpc.METHOD_NOT_FOUND:
                raise DatastoreNotAvailableError(
                    "The datastore is not available in this version of sensorcontainer: %s "
                    "cannot be served (the container answered %s with: %s)"
                    % (what, method, exc.message), exc.code, exc.data)
            raise DatastoreError("%s failed: %s" % (what, _rpc.error_text(
                {"code": exc.code, "message": exc.message, "data": exc.data})), exc.code, exc.data)


def _check_scope(scope):
    if scope != SYSTEM_SCOPE:
        raise ValueError("Scope %s is unsupported." % (scope,))


def _no_client(what):
    raise RuntimeError("SensorService.%s: no connection to the sensor container" % (what,))


def _trace_context_to_dict(trace_context):
    if trace_context is None or isinstance(trace_context, dict):
        return trace_context
    out = {}
    for attr in ("trace_tag", "id"):
        val = getattr(trace_context, attr, None)
        if val is not None:
            out[attr] = val
    if not out:
        to_dict = getattr(trace_context, "to_dict", None)
        if callable(to_dict):
            return to_dict()
        return {"trace_tag": str(trace_context)}
    return out


class _NoLock(object):
    """The handler needs no lock (the RPC client is thread-safe), and a lock
    held across a blocking write could deadlock the reader thread. eventlet
    also swaps RLocks it can reach for green ones: don't give it any."""

    def acquire(self, *args, **kwargs):
        return True

    def release(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _at_fork_reinit(self):
        pass


_LEVEL_NAMES = (
    (logging.CRITICAL, "critical"),
    (logging.ERROR, "error"),
    (logging.WARNING, "warning"),
    (logging.INFO, "info"),
)


def level_name(levelno):
    for threshold, name in _LEVEL_NAMES:
        if levelno >= threshold:
            return name
    return "debug"


class RpcLogHandler(logging.Handler):
    """Forward log records to the container as ``log`` notifications.

    Safe on any thread, including the RPC reader thread (it never blocks
    there). Falls back to stderr when the pipe is closed.
    """

    def __init__(self, client, level=logging.NOTSET, strip_prefixes=(), stream=None):
        logging.Handler.__init__(self, level)
        self._client = client
        # Logger-name prefixes left out of the ``logger`` field (the container
        # tags every line with the sensor ref already).
        self.strip_prefixes = tuple(strip_prefixes)
        self._stream = stream

    def createLock(self):
        self.lock = _NoLock()

    def emit(self, record):
        try:
            message = self.format(record)
            name = record.name
            for prefix in self.strip_prefixes:
                if name.startswith(prefix) and len(name) > len(prefix):
                    name = name[len(prefix):]
            level = level_name(record.levelno)
            client = self._client
            if client is not None and not client.closed and client.log(level, message, name):
                return
            import sys
            stream = self._stream or sys.stderr
            stream.write("%s %s: %s\n" % (level.upper(), name, message))
            stream.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)
