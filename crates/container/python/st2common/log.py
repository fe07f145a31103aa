"""``st2common.log.getLogger``, as StackStorm names its loggers.

StackStorm prefixes logger names with ``st2.``; the logger is a plain
``logging.Logger`` whose records reach the container through the handler the
wrapper puts on the root logger. (StackStorm's secret masking of log
arguments, its ``AUDIT`` level and its ``setup()`` from a config file are not
provided.)
"""

import logging

__all__ = ["getLogger"]

_PREFIX = "st2."


def getLogger(name):
    """The ``logging.Logger`` named ``st2.<name>`` (``name`` unchanged when it
    already starts with ``st2.``)."""
    if not name.startswith(_PREFIX):
        name = _PREFIX + name
    return logging.getLogger(name)
