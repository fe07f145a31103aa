"""Shared helpers for the wrapper tests."""

import os
import shutil
import tempfile
import textwrap
import unittest

from tests.fake_container import FakeContainer

# Method stubs most test sensors need.
STUBS = '''
    def add_trigger(self, trigger):
        pass

    def update_trigger(self, trigger):
        pass

    def remove_trigger(self, trigger):
        pass
'''


class WrapperTestCase(unittest.TestCase):
    """Writes sensors into a temp dir and runs them under a FakeContainer;
    every container (child process) is reaped in tearDown."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="st2shim-test-")
        self._containers = []

    def tearDown(self):
        for fc in self._containers:
            fc.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_sensor(self, source, name="test_sensor.py"):
        path = self.path(name)
        # Sources are indented string literals, possibly followed by STUBS
        # (already at class-body indentation): dedent the first part only.
        head, sep, tail = source.partition(STUBS)
        with open(path, "w") as f:
            f.write(textwrap.dedent(head) + sep + tail)
        return path

    def start(self, source, class_name, **kwargs):
        path = self.write_sensor(source, kwargs.pop("file_name", "test_sensor.py"))
        env = kwargs.pop("extra_env", {})
        env.setdefault("MARKER", self.path("marker"))
        fc = FakeContainer(path, class_name, extra_env=env, **kwargs)
        self._containers.append(fc)
        return fc.start()

    def marker_lines(self):
        try:
            with open(self.path("marker")) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    def assertExit(self, fc, expected, timeout=15.0):
        code = fc.wait_exit(timeout)
        self.assertEqual(code, expected, "exit code %r, expected %r\n--- stderr:\n%s\n--- logs: %r"
                         % (code, expected, fc.stderr_text, fc.logs))
        return code
