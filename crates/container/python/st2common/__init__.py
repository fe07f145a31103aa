"""A small ``st2common`` for StackStorm pack sensors run by sensorcontainer.

Under StackStorm a sensor runs with the whole st2 virtualenv on its path, so
some pack sensors import helpers from ``st2common``. This package provides
the few modules such sensors use, with st2's names, signatures and
behaviour, standard library only:

* ``st2common.util.isotime``  ISO 8601 ``format`` / ``validate`` / ``parse``
* ``st2common.util.date``     UTC-aware datetime helpers
* ``st2common.constants.keyvalue``  datastore scope constants
* ``st2common.log``           ``getLogger``

Every other ``st2common.<name>`` import raises :class:`St2CommonNotProvided`
(an ``ImportError``) naming the module; crates/container/python/README.md
("st2common") lists what is provided.
"""

import sys

__all__ = ["St2CommonNotProvided", "PROVIDED_MODULES"]

# The modules this package provides besides its packages (``st2common``,
# ``st2common.util``, ``st2common.constants``); kept in step with README.md.
PROVIDED_MODULES = (
    "st2common.constants.keyvalue",
    "st2common.log",
    "st2common.util.date",
    "st2common.util.isotime",
)

_README = "crates/container/python/README.md"


class St2CommonNotProvided(ImportError):
    """An ``st2common`` module sensorcontainer does not ship.

    A plain ``ImportError`` subclass (not ``ModuleNotFoundError``): the import
    system silently drops ``ModuleNotFoundError`` raised for a name in a
    ``from st2common.util import <name>`` list and replaces it with a generic
    "cannot import name" error, which would hide this message.
    """

    def __init__(self, fullname):
        message = (
            "%s is not provided by sensorcontainer: its embedded st2common has only %s "
            "(see the \"st2common\" section of %s)"
            % (fullname, ", ".join(PROVIDED_MODULES), _README))
        super(St2CommonNotProvided, self).__init__(message, name=fullname)


class _NotProvidedFinder(object):
    """Last entry of ``sys.meta_path``: reached for an ``st2common.*`` name
    only when no real file provides it, and turns it into a clear error."""

    _st2common_not_provided_finder = True  # survives a reload of this module

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.startswith("st2common."):
            raise St2CommonNotProvided(fullname)
        return None

    @staticmethod
    def invalidate_caches():
        pass


def _install_finder():
    sys.meta_path[:] = [f for f in sys.meta_path
                        if not getattr(f, "_st2common_not_provided_finder", False)]
    sys.meta_path.append(_NotProvidedFinder())


_install_finder()
