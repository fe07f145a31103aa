"""ISO 8601 helpers with StackStorm's ``st2common.util.isotime`` API.

``format`` writes ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` plus ``+HH:MM`` (or ``Z``
with ``offset=False``); a naive datetime is written as UTC. ``validate`` and
``parse`` accept what StackStorm's do: a ``datetime``, or a string in UTC
(``Z``, ``+00``, ``+0000`` or ``+00:00``) with an optional 3-6 digit fraction
of a second and ``T`` or whitespace between date and time.

``add_utc_tz`` and ``get_datetime_utc_now`` are the same as in
``st2common.util.date`` (older StackStorm releases had them here).
"""

import datetime
import re

from st2common.util import date as date_utils
from st2common.util.date import add_utc_tz, get_datetime_utc_now

__all__ = [
    "format",
    "validate",
    "parse",
    "add_utc_tz",
    "get_datetime_utc_now",
    "ISO8601_FORMAT",
    "ISO8601_FORMAT_MICROSECOND",
    "ISO8601_UTC_REGEX",
]

ISO8601_FORMAT = "%Y-%m-%dT%H:%M:%S"
ISO8601_FORMAT_MICROSECOND = ISO8601_FORMAT + ".%f"
ISO8601_UTC_REGEX = (
    r"^\d{4}\-\d{2}\-\d{2}(\s|T)\d{2}:\d{2}:\d{2}(\.\d{3,6})?(Z|\+00|\+0000|\+00:00)$")

_UTC_TEXT = re.compile(ISO8601_UTC_REGEX)
# The default name of a fixed-offset datetime.timezone ("UTC+05:30").
_UNNAMED_OFFSET = re.compile(r"^UTC[+-]\d")


def format(dt, usec=True, offset=True):
    """Format ``dt`` as an ISO 8601 string.

    ``dt`` is a ``datetime`` (naive means UTC), an ISO 8601 UTC string (see
    ``parse``) or an ``int`` Unix timestamp. ``usec`` adds the six-digit
    microseconds. With ``offset`` the UTC offset follows as ``+HH:MM``
    (``+00:00`` for naive datetimes); without it, ``Z`` for UTC or naive
    datetimes, else the timezone's name (its offset when it has no name of
    its own). The wall-clock time is written as is, not converted to UTC.
    """
    if isinstance(dt, str):
        dt = parse(dt)
    elif isinstance(dt, int) and not isinstance(dt, bool):
        dt = datetime.datetime.fromtimestamp(dt, datetime.timezone.utc)
    elif not isinstance(dt, datetime.datetime):
        raise TypeError("format() needs a datetime, an ISO 8601 UTC string or an int "
                        "timestamp, not %s" % (type(dt).__name__,))

    text = "%04d-%02d-%02dT%02d:%02d:%02d" % (dt.year, dt.month, dt.day,
                                              dt.hour, dt.minute, dt.second)
    if usec:
        text += ".%06d" % (dt.microsecond,)
    if offset:
        return text + _offset_text(dt.utcoffset())
    name = dt.tzinfo.tzname(dt) if dt.tzinfo is not None else "UTC"
    if name == "UTC":
        return text + "Z"
    if not name or _UNNAMED_OFFSET.match(name):
        return text + _offset_text(dt.utcoffset())
    return text + name


def validate(value, raise_exception=True):
    """Whether ``value`` is a ``datetime`` or an ISO 8601 UTC string.

    :raises ValueError: it is neither and ``raise_exception`` is true.
    """
    if isinstance(value, datetime.datetime):
        return True
    if isinstance(value, str) and _UTC_TEXT.match(value):
        return True
    if raise_exception:
        raise ValueError("Datetime value does not match expected format.")
    return False


def parse(value, preserve_original_tz=False, validate_value=True):
    """Parse an ISO 8601 date/time and return a timezone-aware datetime.

    With ``validate_value`` (the default) ``value`` must pass ``validate``
    (a ``datetime`` or a UTC string); without it, anything
    ``st2common.util.date.parse`` reads is accepted. The result is in UTC
    unless ``preserve_original_tz`` is true; a naive value is taken as UTC.

    :raises ValueError: the value is not accepted.
    """
    if validate_value:
        validate(value, raise_exception=True)
    return date_utils.parse(value, preserve_original_tz=preserve_original_tz)


def _offset_text(offset):
    if offset is None:
        return "+00:00"
    seconds = offset.days * 86400 + offset.seconds
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    text = "%s%02d:%02d" % (sign, hours, minutes)
    if seconds:
        text += ":%02d" % (seconds,)
    return text
