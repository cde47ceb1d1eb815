#!/usr/bin/env python3
"""The summary line is what CI trusts: check its counting on every shape."""
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "scripts", "summarize-tests")
loader = importlib.machinery.SourceFileLoader("summarize_tests", SCRIPT)
spec = importlib.util.spec_from_loader("summarize_tests", loader)
summarize = importlib.util.module_from_spec(spec)
loader.exec_module(summarize)


def test(name, stdout, result):
    return {"name": name, "stdout": stdout, "result": result}


class CountTest(unittest.TestCase):
    def test_tap_cases_are_counted_one_by_one(self):
        t = test("ring", "1..3\nok 1 - a\nok 2 - b\nok 3 - c\n", "OK")
        self.assertEqual(summarize.count_test(t)[:3], (3, 0, 0))

    def test_crash_counts_unreported_cases_as_failed(self):
        t = test("ring", "1..5\nok 1 - a\nok 2 - b\n", "FAIL")
        self.assertEqual(summarize.count_test(t)[:3], (2, 3, 0))

    def test_failed_case_is_named(self):
        t = test("ring", "1..2\nok 1 - a\nnot ok 2 - b\n", "FAIL")
        passed, failed, skipped, names = summarize.count_test(t)
        self.assertEqual((passed, failed, skipped), (1, 1, 0))
        self.assertEqual(names, ["ring:b"])

    def test_failing_binary_with_all_cases_ok_still_fails(self):
        t = test("ring", "1..1\nok 1 - a\n", "FAIL")  # e.g. a leak at exit
        self.assertEqual(summarize.count_test(t)[:3], (1, 1, 0))

    def test_tap_skip_and_exit_77_skip(self):
        tap = test("kvm", "1..2\nok 1 - a # SKIP no /dev/kvm\nok 2 - b\n", "OK")
        plain = test("boot", "no /dev/kvm\n", "SKIP")
        self.assertEqual(summarize.count_test(tap)[:3], (1, 0, 1))
        self.assertEqual(summarize.count_test(plain)[:3], (0, 0, 1))

    def test_whole_tap_program_skipped(self):
        # What the KVM tests print without a usable /dev/kvm.
        t = test("kvm-os", "1..0 # SKIP no usable /dev/kvm\n", "SKIP")
        self.assertEqual(summarize.count_test(t)[:3], (0, 0, 1))
        # A plan of 0 without the skip is not a pass of nothing.
        self.assertEqual(summarize.count_test(test("x", "1..0\n", "FAIL"))[:3], (0, 1, 0))

    def test_non_tap_timeout_fails(self):
        self.assertEqual(summarize.count_test(test("fuzz", "", "TIMEOUT"))[:3], (0, 1, 0))

    def test_main_exit_status_and_missing_log(self):
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as log:
            log.write(json.dumps(test("ok", "", "OK")) + "\n")
        try:
            self.assertEqual(summarize.main(["x", "a=" + log.name]), 0)
            self.assertEqual(summarize.main(["x", "a=" + log.name, "b=/nonexistent"]), 1)
        finally:
            os.unlink(log.name)


if __name__ == "__main__":
    unittest.main(verbosity=1)
