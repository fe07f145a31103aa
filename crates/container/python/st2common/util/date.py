"""Timezone-aware datetime helpers with StackStorm's
``st2common.util.date`` API.

A naive datetime (no ``tzinfo``) is taken to be UTC, as in StackStorm.
``parse`` reads ISO 8601 / RFC 3339 text with its own parser (StackStorm uses
ciso8601 with a dateutil fallback; neither is available here) and, as a
fallback, RFC 2822 dates (``"Tue, 15 Nov 1994 08:12:31 GMT"``) through the
standard library's ``email.utils``. Other free-form text dateutil would guess
at raises ``ValueError``.
"""

import datetime
import email.utils
import re

__all__ = [
    "get_datetime_utc_now",
    "append_milliseconds_to_time",
    "add_utc_tz",
    "convert_to_utc",
    "parse",
]

_UTC = datetime.timezone.utc
_ZERO = datetime.timedelta(0)

# ISO 8601 date, optionally followed by a time and a UTC offset. Extended
# (2015-03-01T12:30:05) and basic (20150301T123005) forms; "T", "t" or a
# space between date and time; a fraction of a second after "." or ",";
# offsets Z, +HH, +HHMM, +HH:MM, or the words UTC / GMT.
_ISO8601 = re.compile(r"""
    (?P<year>\d{4})
    (?:
        -(?P<month>\d{2})(?:-(?P<day>\d{2}))?
      | (?P<bmonth>\d{2})(?P<bday>\d{2})
    )?
    (?:
        [Tt ]
        (?P<hour>\d{2})
        (?:
            :(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d+))?)?
          | (?P<bminute>\d{2})(?:(?P<bsecond>\d{2})(?:[.,](?P<bfraction>\d+))?)?
        )?
        \ ?
        (?:
            (?P<zulu>[Zz]|(?i:UTC|GMT))
          | (?P<sign>[+-])(?P<off_h>\d{2})(?::?(?P<off_m>\d{2}))?
        )?
    )?
    \Z
""", re.VERBOSE)


def get_datetime_utc_now():
    """The current time as a datetime with UTC ``tzinfo``."""
    return datetime.datetime.now(_UTC)


def append_milliseconds_to_time(date, millis):
    """``date`` plus ``millis`` milliseconds, in UTC (naive ``date`` is UTC)."""
    return convert_to_utc(date + datetime.timedelta(milliseconds=millis))


def add_utc_tz(dt):
    """``dt`` with UTC ``tzinfo`` set, wall-clock time unchanged.

    :raises ValueError: ``dt`` already has a timezone other than UTC.
    """
    if dt.tzinfo is not None and dt.utcoffset() not in (None, _ZERO):
        raise ValueError("datetime already contains a non UTC timezone")
    return dt.replace(tzinfo=_UTC)


def convert_to_utc(dt):
    """``dt`` converted to UTC; a naive ``dt`` is taken to be UTC already."""
    if dt.tzinfo is None:
        return add_utc_tz(dt)
    return dt.astimezone(_UTC)


def parse(value, preserve_original_tz=False):
    """Parse a date/time and return a timezone-aware datetime.

    ``value`` is a string (or anything whose ``str()`` is one; a
    ``datetime`` is taken as is). Text without a UTC offset is UTC. The
    result is converted to UTC unless ``preserve_original_tz`` is true, in
    which case it keeps the offset the text carried.

    :raises ValueError: ``value`` is not a date this parser reads.
    """
    if isinstance(value, datetime.datetime):
        dt = value
    else:
        dt = _parse_text(str(value))
    if dt.tzinfo is None:
        dt = add_utc_tz(dt)
    if not preserve_original_tz:
        dt = convert_to_utc(dt)
    return dt


def _parse_text(text):
    text = text.strip()
    m = _ISO8601.match(text)
    if m is not None:
        return _from_match(m, text)
    try:
        dt = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        dt = None
    if dt is None:
        raise ValueError("Unknown string format: %s" % (text,))
    return dt


def _from_match(m, text):
    g = m.groupdict()

    def num(*names):
        for name in names:
            if g[name] is not None:
                return int(g[name])
        return None

    year = int(g["year"])
    month = num("month", "bmonth")
    day = num("day", "bday")
    if month is None:
        month = 1
    if day is None:
        day = 1
    hour = num("hour") or 0
    minute = num("minute", "bminute") or 0
    second = num("second", "bsecond") or 0
    fraction = g["fraction"] or g["bfraction"] or ""
    # Microsecond precision: further digits are dropped (as ciso8601 does).
    microsecond = int((fraction + "000000")[:6])

    tzinfo = None
    if g["zulu"] is not None:
        tzinfo = _UTC
    elif g["sign"] is not None:
        off_h = int(g["off_h"])
        off_m = int(g["off_m"] or 0)
        if off_h > 23 or off_m > 59:
            raise ValueError("Invalid UTC offset in %r" % (text,))
        offset = datetime.timedelta(hours=off_h, minutes=off_m)
        if g["sign"] == "-":
            offset = -offset
        tzinfo = _UTC if offset == _ZERO else datetime.timezone(offset)

    try:
        return datetime.datetime(year, month, day, hour, minute, second, microsecond,
                                 tzinfo=tzinfo)
    except ValueError as exc:
        raise ValueError("Invalid date %r: %s" % (text, exc))
