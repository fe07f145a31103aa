"""The embedded st2common subset: in process, and imported by a sensor run
under the wrapper."""

import datetime
import importlib
import logging
import sys
import unittest

import st2common
from st2common.constants import keyvalue
from st2common import log as st2_log
from st2common.util import date as date_utils
from st2common.util import isotime

from tests.helpers import STUBS, WrapperTestCase

UTC = datetime.timezone.utc
PLUS_0530 = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
MINUS_0500 = datetime.timezone(datetime.timedelta(hours=-5))


def dt(*args, **kwargs):
    return datetime.datetime(*args, **kwargs)


class IsotimeFormatTests(unittest.TestCase):
    def test_naive_datetime_is_written_as_utc(self):
        d = dt(2015, 3, 1, 12, 30, 5, 123456)
        self.assertEqual(isotime.format(d), "2015-03-01T12:30:05.123456+00:00")
        self.assertEqual(isotime.format(d, usec=False), "2015-03-01T12:30:05+00:00")
        self.assertEqual(isotime.format(d, offset=False), "2015-03-01T12:30:05.123456Z")
        self.assertEqual(isotime.format(d, usec=False, offset=False), "2015-03-01T12:30:05Z")

    def test_zero_microseconds_are_still_written(self):
        self.assertEqual(isotime.format(dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC)),
                         "2015-03-01T12:30:05.000000+00:00")

    def test_aware_datetime_keeps_its_wall_clock_and_offset(self):
        self.assertEqual(isotime.format(dt(2015, 3, 1, 12, 30, 5, tzinfo=PLUS_0530)),
                         "2015-03-01T12:30:05.000000+05:30")
        self.assertEqual(isotime.format(dt(2015, 3, 1, 7, 0, tzinfo=MINUS_0500), usec=False),
                         "2015-03-01T07:00:00-05:00")

    def test_offset_false_uses_z_for_utc_and_the_name_or_offset_otherwise(self):
        self.assertEqual(isotime.format(dt(2015, 3, 1, tzinfo=UTC), offset=False),
                         "2015-03-01T00:00:00.000000Z")
        named = datetime.timezone(datetime.timedelta(hours=1), "CET")
        self.assertEqual(isotime.format(dt(2015, 3, 1, tzinfo=named), usec=False, offset=False),
                         "2015-03-01T00:00:00CET")
        # A fixed offset without a name of its own: the offset, not "UTC+05:30".
        self.assertEqual(isotime.format(dt(2015, 3, 1, tzinfo=PLUS_0530), usec=False,
                                        offset=False),
                         "2015-03-01T00:00:00+05:30")

    def test_string_is_parsed_first(self):
        self.assertEqual(isotime.format("2015-03-01T12:30:05.123Z"),
                         "2015-03-01T12:30:05.123000+00:00")
        self.assertEqual(isotime.format("2015-03-01 12:30:05+0000", usec=False, offset=False),
                         "2015-03-01T12:30:05Z")
        with self.assertRaises(ValueError):
            isotime.format("2015-03-01T12:30:05+05:00")  # not UTC: st2 rejects it too

    def test_int_is_a_unix_timestamp(self):
        self.assertEqual(isotime.format(0), "1970-01-01T00:00:00.000000+00:00")
        self.assertEqual(isotime.format(1425213005, usec=False, offset=False),
                         "2015-03-01T12:30:05Z")

    def test_other_types_are_refused(self):
        with self.assertRaises(TypeError):
            isotime.format(1.5)
        with self.assertRaises(TypeError):
            isotime.format(None)

    def test_years_before_1000_are_zero_padded(self):
        self.assertEqual(isotime.format(dt(999, 1, 2, 3, 4, 5), usec=False),
                         "0999-01-02T03:04:05+00:00")


class IsotimeParseTests(unittest.TestCase):
    def test_validate_accepts_datetimes_and_utc_strings(self):
        for value in ["2000-01-01 12:00:00Z", "2000-01-01 12:00:00+00",
                      "2000-01-01 12:00:00+0000", "2000-01-01 12:00:00+00:00",
                      "2000-01-01T12:00:00.000Z", "2000-01-01T12:00:00.000000Z",
                      dt(2000, 1, 1), dt(2000, 1, 1, tzinfo=PLUS_0530)]:
            self.assertTrue(isotime.validate(value), value)

    def test_validate_rejects_naive_non_utc_and_odd_strings(self):
        for value in ["2000-01-01T12:00:00", "2000-01-01T12:00:00+05:00",
                      "2000-01-01T12:00:00.12Z", "2000-01-01T12:00Z", "2000-01-01", "",
                      None, 946728000]:
            self.assertFalse(isotime.validate(value, raise_exception=False), value)
            with self.assertRaisesRegex(ValueError, "does not match expected format"):
                isotime.validate(value)

    def test_parse_returns_utc_aware_datetimes(self):
        cases = {
            "2015-03-01T12:30:05Z": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "2015-03-01 12:30:05.123+00": dt(2015, 3, 1, 12, 30, 5, 123000, tzinfo=UTC),
            "2015-03-01T12:30:05.123456+0000": dt(2015, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
            "1970-01-01T00:00:00.000Z": dt(1970, 1, 1, tzinfo=UTC),  # AWS eventTime
        }
        for text, expected in cases.items():
            got = isotime.parse(text)
            self.assertEqual(got, expected, text)
            self.assertIs(got.tzinfo, UTC, text)

    def test_parse_rejects_what_validate_rejects(self):
        with self.assertRaises(ValueError):
            isotime.parse("2015-03-01T12:30:05")
        with self.assertRaises(ValueError):
            isotime.parse("not a date")

    def test_parse_without_validation_reads_offsets(self):
        got = isotime.parse("2015-03-01T12:30:05+05:30", validate_value=False)
        self.assertEqual(got, dt(2015, 3, 1, 7, 0, 5, tzinfo=UTC))
        self.assertIs(got.tzinfo, UTC)
        kept = isotime.parse("2015-03-01T12:30:05+05:30", validate_value=False,
                             preserve_original_tz=True)
        self.assertEqual((kept.hour, kept.utcoffset()),
                         (12, datetime.timedelta(hours=5, minutes=30)))

    def test_parse_of_a_datetime(self):
        self.assertEqual(isotime.parse(dt(2015, 3, 1, 12)), dt(2015, 3, 1, 12, tzinfo=UTC))
        self.assertIs(isotime.parse(dt(2015, 3, 1, 12)).tzinfo, UTC)
        self.assertEqual(isotime.parse(dt(2015, 3, 1, 12, tzinfo=MINUS_0500)),
                         dt(2015, 3, 1, 17, tzinfo=UTC))

    def test_format_parse_round_trip(self):
        d = dt(2021, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
        self.assertEqual(isotime.parse(isotime.format(d)), d)
        self.assertEqual(isotime.parse(isotime.format(d, offset=False)), d)

    def test_old_names_are_kept(self):
        self.assertEqual(isotime.add_utc_tz(dt(2015, 3, 1)), dt(2015, 3, 1, tzinfo=UTC))
        self.assertIs(isotime.get_datetime_utc_now().tzinfo, UTC)


class DateTests(unittest.TestCase):
    def test_get_datetime_utc_now(self):
        before = datetime.datetime.now(UTC)
        now = date_utils.get_datetime_utc_now()
        after = datetime.datetime.now(UTC)
        self.assertIs(now.tzinfo, UTC)
        self.assertTrue(before <= now <= after)

    def test_add_utc_tz(self):
        self.assertEqual(date_utils.add_utc_tz(dt(2015, 3, 1, 12)),
                         dt(2015, 3, 1, 12, tzinfo=UTC))
        zero = datetime.timezone(datetime.timedelta(0), "GMT")
        self.assertIs(date_utils.add_utc_tz(dt(2015, 3, 1, tzinfo=zero)).tzinfo, UTC)
        with self.assertRaisesRegex(ValueError, "non UTC timezone"):
            date_utils.add_utc_tz(dt(2015, 3, 1, tzinfo=PLUS_0530))

    def test_convert_to_utc(self):
        self.assertEqual(date_utils.convert_to_utc(dt(2015, 3, 1, 12)),
                         dt(2015, 3, 1, 12, tzinfo=UTC))
        got = date_utils.convert_to_utc(dt(2015, 3, 1, 12, tzinfo=PLUS_0530))
        self.assertEqual((got.hour, got.minute), (6, 30))
        self.assertIs(got.tzinfo, UTC)

    def test_append_milliseconds_to_time(self):
        self.assertEqual(date_utils.append_milliseconds_to_time(dt(2015, 3, 1, 12), 1500),
                         dt(2015, 3, 1, 12, 0, 1, 500000, tzinfo=UTC))

    def test_parse_iso8601_forms(self):
        cases = {
            "2015-03-01": dt(2015, 3, 1, tzinfo=UTC),
            "2015-03": dt(2015, 3, 1, tzinfo=UTC),
            "2015-03-01T12:30": dt(2015, 3, 1, 12, 30, tzinfo=UTC),
            "2015-03-01t12:30:05z": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "2015-03-01 12:30:05": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),  # naive is UTC
            "20150301T123005Z": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "20150301T123005.25+0100": dt(2015, 3, 1, 11, 30, 5, 250000, tzinfo=UTC),
            "2015-03-01T12:30:05,5+05:30": dt(2015, 3, 1, 7, 0, 5, 500000, tzinfo=UTC),
            "2015-03-01T12:30:05-05": dt(2015, 3, 1, 17, 30, 5, tzinfo=UTC),
            "2015-03-01T12:30:05.1234567Z": dt(2015, 3, 1, 12, 30, 5, 123456, tzinfo=UTC),
            "2015-03-01 12:30:05 +0000": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "2015-03-01 12:30:05 UTC": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "  2015-03-01T12:30:05Z\n": dt(2015, 3, 1, 12, 30, 5, tzinfo=UTC),
            "2015-03-01 12:30:05.000123+00:00": dt(2015, 3, 1, 12, 30, 5, 123, tzinfo=UTC),
        }
        for text, expected in cases.items():
            got = date_utils.parse(text)
            self.assertEqual(got, expected, text)
            self.assertIs(got.tzinfo, UTC, text)

    def test_parse_of_str_of_a_datetime(self):
        d = dt(2015, 3, 1, 12, 30, 5, 42, tzinfo=MINUS_0500)
        self.assertEqual(date_utils.parse(str(d)), d)

    def test_parse_rfc2822(self):
        self.assertEqual(date_utils.parse("Tue, 15 Nov 1994 08:12:31 GMT"),
                         dt(1994, 11, 15, 8, 12, 31, tzinfo=UTC))
        self.assertEqual(date_utils.parse("Sun, 01 Mar 2015 12:30:05 +0200"),
                         dt(2015, 3, 1, 10, 30, 5, tzinfo=UTC))

    def test_preserve_original_tz(self):
        got = date_utils.parse("2015-03-01T12:30:05-05:00", preserve_original_tz=True)
        self.assertEqual(got.hour, 12)
        self.assertEqual(got.utcoffset(), datetime.timedelta(hours=-5))
        naive = date_utils.parse("2015-03-01T12:30:05", preserve_original_tz=True)
        self.assertIs(naive.tzinfo, UTC)

    def test_parse_errors_are_value_errors(self):
        for text in ["", "nonsense", "2015-13-01", "2015-02-30T00:00:00Z", "201503",
                     "2015-03-01T25:00:00Z", "2015-03-01T12:30:05+24:00", "12:30"]:
            with self.assertRaises(ValueError, msg=text):
                date_utils.parse(text)
        with self.assertRaisesRegex(ValueError, "Unknown string format: nonsense"):
            date_utils.parse("nonsense")


class KeyvalueConstantsTests(unittest.TestCase):
    def test_values(self):
        self.assertEqual(keyvalue.SYSTEM_SCOPE, "system")
        self.assertEqual(keyvalue.USER_SCOPE, "user")
        self.assertEqual(keyvalue.FULL_SYSTEM_SCOPE, "st2kv.system")
        self.assertEqual(keyvalue.FULL_USER_SCOPE, "st2kv.user")
        self.assertEqual(keyvalue.DATASTORE_PARENT_SCOPE, "st2kv")
        self.assertEqual(keyvalue.ALL_SCOPE, "all")
        self.assertEqual(keyvalue.ALLOWED_SCOPES,
                         ["system", "user", "st2kv.system", "st2kv.user"])
        self.assertEqual((keyvalue.USER_SEPARATOR, keyvalue.DATASTORE_KEY_SEPARATOR,
                          keyvalue.DATASTORE_SCOPE_SEPARATOR), (":", ":", "."))

    def test_system_scope_is_what_sensor_service_uses(self):
        from st2reactor.container import sensor_service
        self.assertEqual(keyvalue.SYSTEM_SCOPE, sensor_service.SYSTEM_SCOPE)


class LogTests(unittest.TestCase):
    def test_get_logger_prefixes_st2(self):
        logger = st2_log.getLogger("my_pack.sensor")
        self.assertIsInstance(logger, logging.Logger)
        self.assertEqual(logger.name, "st2.my_pack.sensor")
        self.assertIs(st2_log.getLogger("st2.my_pack.sensor"), logger)

    def test_st2common_log_exposes_stdlib_logging(self):
        # st2 code does "from st2common.log import logging".
        self.assertIs(st2_log.logging, logging)


class NotProvidedTests(unittest.TestCase):
    def assertNotProvided(self, statement, module):
        with self.assertRaises(ImportError) as cm:
            exec(statement, {})
        exc = cm.exception
        self.assertIsInstance(exc, st2common.St2CommonNotProvided)
        self.assertEqual(exc.name, module)
        self.assertEqual(
            str(exc),
            "%s is not provided by sensorcontainer: its embedded st2common has only "
            "st2common.constants.keyvalue, st2common.log, st2common.util.date, "
            "st2common.util.isotime (see the \"st2common\" section of "
            "crates/container/python/README.md)" % module)
        self.assertNotIn(module, sys.modules)

    def test_unprovided_modules_raise_a_clear_import_error(self):
        self.assertNotProvided("import st2common.services", "st2common.services")
        self.assertNotProvided("import st2common.runners.base_action", "st2common.runners")
        self.assertNotProvided("from st2common.services import datastore",
                               "st2common.services")
        self.assertNotProvided("from st2common.util.jsonify import json_encode",
                               "st2common.util.jsonify")
        self.assertNotProvided("import st2common.constants.action",
                               "st2common.constants.action")

    def test_from_list_import_keeps_the_message(self):
        # "from pkg import name" turns a ModuleNotFoundError for pkg.name into a
        # generic "cannot import name"; the message must survive.
        self.assertNotProvided("from st2common.util import misc", "st2common.util.misc")
        self.assertNotProvided("from st2common import services", "st2common.services")
        self.assertNotProvided("from st2common.util import isotime, jsonify",
                               "st2common.util.jsonify")

    def test_guarded_import_falls_back(self):
        try:
            from st2common.services import datastore  # noqa: F401
            fallback = False
        except ImportError:
            fallback = True
        self.assertTrue(fallback)

    def test_provided_modules_import(self):
        for name in st2common.PROVIDED_MODULES + ("st2common.util", "st2common.constants"):
            self.assertTrue(importlib.import_module(name).__file__.startswith(
                st2common.__path__[0]), name)

    def test_other_packages_are_untouched(self):
        with self.assertRaises(ModuleNotFoundError) as cm:
            importlib.import_module("st2common_lookalike_that_does_not_exist")
        self.assertNotIsInstance(cm.exception, st2common.St2CommonNotProvided)

    def test_the_finder_is_installed_once_and_last(self):
        importlib.reload(st2common)
        importlib.reload(st2common)
        finders = [f for f in sys.meta_path
                   if getattr(f, "_st2common_not_provided_finder", False)]
        self.assertEqual(len(finders), 1)
        self.assertIs(sys.meta_path[-1], finders[0])
        self.assertNotProvided("import st2common.services", "st2common.services")


SENSOR = '''
import os
from st2common import log as logging
from st2common.constants.keyvalue import SYSTEM_SCOPE
from st2common.util import isotime
import st2common.util.date as date
from st2reactor.sensor.base import Sensor

try:
    from st2common.services.datastore import SensorDatastoreService  # noqa: F401
    HAVE_SERVICES = True
except ImportError as exc:
    HAVE_SERVICES = False
    SERVICES_ERROR = str(exc)

LOG = logging.getLogger(__name__)


class UsesSt2common(Sensor):
    def setup(self):
        pass

    def run(self):
        when = isotime.parse("2015-03-01T12:30:05.123Z")
        LOG.info("st2common loaded")
        self.sensor_service.dispatch("tests.event", {
            "formatted": isotime.format(when, offset=False),
            "epoch": int(when.timestamp()),
            "aware_now": date.get_datetime_utc_now().tzinfo is not None,
            "scope": SYSTEM_SCOPE,
            "have_services": HAVE_SERVICES,
            "services_error": SERVICES_ERROR,
        })

    def cleanup(self):
        pass
''' + STUBS


class SensorUsesSt2commonTests(WrapperTestCase):
    def test_sensor_imports_st2common_helpers(self):
        fc = self.start(SENSOR, "UsesSt2common")
        self.assertExit(fc, 0)
        self.assertEqual(len(fc.dispatches), 1, fc.stderr_text)
        payload = fc.dispatches[0]["payload"]
        self.assertEqual(payload.pop("services_error"),
                         "st2common.services is not provided by sensorcontainer: its embedded "
                         "st2common has only st2common.constants.keyvalue, st2common.log, "
                         "st2common.util.date, st2common.util.isotime (see the \"st2common\" "
                         "section of crates/container/python/README.md)")
        self.assertEqual(payload, {"formatted": "2015-03-01T12:30:05.123000Z",
                                   "epoch": 1425213005, "aware_now": True,
                                   "scope": "system", "have_services": False})
        logs = [entry for entry in fc.logs if entry.get("message") == "st2common loaded"]
        self.assertEqual(len(logs), 1, fc.logs)
        self.assertEqual(logs[0].get("level"), "info")
        self.assertTrue(logs[0].get("logger", "").startswith("st2."), logs[0])

    def test_unguarded_import_of_an_unprovided_module_fails_the_sensor(self):
        src = '''
        from st2common.runners.base_action import Action
        '''
        fc = self.start(src, "Whatever")
        self.assertExit(fc, 1)
        err = fc.stderr_text
        self.assertIn("St2CommonNotProvided", err)
        self.assertIn("st2common.runners is not provided by sensorcontainer", err)
        self.assertIn("crates/container/python/README.md", err)


if __name__ == "__main__":
    unittest.main()
