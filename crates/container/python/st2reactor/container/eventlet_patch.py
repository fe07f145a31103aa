"""Eventlet monkey-patching, done by the wrapper before anything else.

StackStorm's sensor wrapper monkey-patches (``os``, ``select``, ``socket``,
``thread``, ``time``) as its very first statements, so every sensor runs
green whether or not it patches itself: a sensor module that creates a Flask
app or imports ``socketserver`` at import time binds eventlet's cooperative
``select``/``selectors``, a Werkzeug server in ``run()`` yields to the hub,
and ``eventlet.spawn_after`` timers fire. ``sensor_wrapper.py`` calls
:func:`patch_from_env` before it imports anything but ``os`` and ``sys``.

Rules (``SENSOR_EVENTLET`` environment variable):

- unset, empty, ``1``, ``auto``...: patch when ``import eventlet`` works;
  when it does not (eventlet not installed in the sensor's interpreter),
  nothing happens: the runtime behaves exactly as without this module.
- ``0``, ``false``, ``no``, ``off``: never patch (a sensor may still patch
  itself when it is imported, as before).

As StackStorm does: the ``thread`` module is left unpatched when
``--use-debugger`` is on the command line (or inside ``--parent-args``) or
``ST2_USE_DEBUGGER`` is set; eventlet's green ``ssl`` raises the standard
``socket.timeout``; and the blocking ``select.poll`` that eventlet removes is
put back on the ``select`` module for the code that calls it directly
(``subprocess``-style helpers in third-party libraries). ``selectors`` keeps
eventlet's green ``SelectSelector`` as its only selector, so ``socketserver``
(and Werkzeug's development server) stay cooperative.

The runtime's own machinery (pipe reader and writer, watchdog, the locks and
sleeps they use) never runs green: ``rpc.py`` takes the unpatched modules
from ``eventlet.patcher.original()`` when patching came first.

Standard library only: this module imports nothing but ``os`` and ``sys``
before it decides.
"""

import os
import sys

__all__ = ["ENV_VAR", "patch_from_env", "monkey_patch", "is_use_debugger_flag_provided",
           "enabled_by_env", "state"]

ENV_VAR = "SENSOR_EVENTLET"
_OFF = ("0", "false", "no", "off", "never", "disable", "disabled")

USE_DEBUGGER_FLAG = "--use-debugger"
PARENT_ARGS_FLAG = "--parent-args="
USE_DEBUGGER_ENV_VAR = "ST2_USE_DEBUGGER"

# What happened, for the wrapper's messages and the tests:
# patched (bool), thread (bool: thread module patched too), reason (str).
state = {"patched": False, "thread": False, "reason": "not attempted"}


def enabled_by_env(env=None):
    env = os.environ if env is None else env
    return env.get(ENV_VAR, "").strip().lower() not in _OFF


def is_use_debugger_flag_provided(argv=None, env=None):
    """StackStorm's rule: no thread patching under a remote debugger."""
    argv = sys.argv if argv is None else argv
    env = os.environ if env is None else env
    if USE_DEBUGGER_FLAG in argv:
        return True
    for arg in argv:
        if arg.startswith(PARENT_ARGS_FLAG) and USE_DEBUGGER_FLAG in arg:
            return True
    return bool(env.get(USE_DEBUGGER_ENV_VAR))


def _stderr(text):
    try:
        sys.stderr.write("sensor_wrapper: %s\n" % (text,))
        sys.stderr.flush()
    except Exception:
        pass


def _import_eventlet():
    """``import eventlet`` without its deprecation banner (the wrapper, not
    the sensor, triggers it). Returns the module or None."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"(?s)\s*Eventlet is deprecated")
        try:
            import eventlet
        except ImportError as exc:
            if getattr(exc, "name", None) != "eventlet":
                # Installed but broken (greenlet missing...): say so, run unpatched.
                _stderr("eventlet is installed but cannot be imported (%s: %s); "
                        "running the sensor without monkey-patching"
                        % (type(exc).__name__, exc))
            return None
        except Exception as exc:
            _stderr("importing eventlet failed (%s: %s); running the sensor without "
                    "monkey-patching" % (type(exc).__name__, exc))
            return None
    return eventlet


def _restore_blocking_poll(eventlet):
    """StackStorm's select/poll workaround (``use_select_poll_workaround``
    with ``nose_only=False``): code that calls ``select.poll()`` directly
    gets the real (blocking) one back; ``subprocess`` and ``selectors`` see
    the same ``select`` module. ``selectors.PollSelector`` stays removed, so
    selector users (``socketserver``) keep the green ``SelectSelector``."""
    import select

    if not hasattr(select, "poll"):
        real_poll = getattr(eventlet.patcher.original("select"), "poll", None)
        if real_poll is not None:
            select.poll = real_poll
    sys.modules["select"] = select
    import selectors
    import subprocess

    subprocess.select = select
    sys.modules["selectors"] = selectors
    selectors.select = select


def monkey_patch(patch_thread=None):
    """Patch like StackStorm's ``st2common.util.monkey_patch.monkey_patch``
    followed by its select/poll workaround. Returns True if patched."""
    eventlet = _import_eventlet()
    if eventlet is None:
        state.update(patched=False, thread=False, reason="eventlet is not importable")
        return False
    if patch_thread is None:
        patch_thread = not is_use_debugger_flag_provided()
    try:
        eventlet.monkey_patch(os=True, select=True, socket=True, thread=patch_thread, time=True)
        try:
            # eventlet's green ssl raises its own timeout, not socket.timeout:
            # some libraries (redis over TLS...) only catch the standard one.
            from eventlet.green import ssl as green_ssl
            import socket

            green_ssl.timeout_exc = socket.timeout
        except Exception:
            pass
        _restore_blocking_poll(eventlet)
    except Exception as exc:
        _stderr("eventlet.monkey_patch() failed (%s: %s); the sensor may run partly patched"
                % (type(exc).__name__, exc))
        state.update(patched=True, thread=bool(patch_thread), reason="monkey_patch failed")
        return True
    state.update(patched=True, thread=bool(patch_thread), reason="patched")
    return True


def patch_from_env(env=None):
    """Patch unless ``SENSOR_EVENTLET`` disables it. Returns True if patched."""
    if not enabled_by_env(env):
        state.update(patched=False, thread=False, reason="%s disables it" % (ENV_VAR,))
        return False
    return monkey_patch()
