"""Run one interpreter's own ``test.test_socketserver`` and write a JSON summary.

Theory of operation
-------------------
``test_cpython_suite.py`` copies this file next to a ``socketserver.py``
shim (which puts ``reference_impl``, or a deliberately broken variant of
it, into ``sys.modules["socketserver"]``) and runs it with *that*
interpreter::

    python cpython_suite_runner.py RESULT.json [--exclude TEST_ID_SUFFIX ...]

It loads CPython's test module exactly as ``python -m unittest`` would,
drops the excluded tests, runs the rest with a verbose text runner (on
stderr) and writes what happened to ``RESULT.json``: which module really
answered to the name ``socketserver`` (so a shim that silently failed
cannot pass as the reference), and every test id with its outcome.  It
runs under Python 3.9-3.13 and imports nothing from the kit.

If the interpreter has no ``test`` package (some distributions split it
out), the summary says so with ``status: "no-test-package"`` and the
caller skips; any other import error is reported as an error.
"""

import importlib.util
import json
import sys
import unittest


def _flatten(suite):
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            yield from _flatten(item)
        else:
            yield item


class _Recorder(unittest.TextTestResult):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def addSuccess(self, test):
        super().addSuccess(test)
        self.outcomes[test.id()] = "ok"

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes[test.id()] = "failure"

    def addError(self, test, err):
        super().addError(test, err)
        self.outcomes[test.id()] = "error"

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skipped: " + reason

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "expected-failure"

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "unexpected-success"


def main(argv):
    result_path = argv[0]
    excluded = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--exclude"]
    summary = {"python": ".".join(str(part) for part in sys.version_info[:3])}

    if importlib.util.find_spec("test") is None or importlib.util.find_spec("test.support") is None:
        summary["status"] = "no-test-package"
        return _write(result_path, summary)

    import test.support

    test.support.verbose = False  # the module reads it at import time
    import socketserver

    summary["socketserver_module"] = getattr(socketserver, "__name__", None)
    summary["socketserver_file"] = getattr(socketserver, "__file__", None)
    if importlib.util.find_spec("test.test_socketserver") is None:
        summary["status"] = "no-test-package"
        return _write(result_path, summary)
    from test import test_socketserver

    loaded = unittest.defaultTestLoader.loadTestsFromModule(test_socketserver)
    kept, dropped = [], []
    for case in _flatten(loaded):
        (dropped if any(case.id().endswith(suffix) for suffix in excluded) else kept).append(case)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=2, resultclass=_Recorder)
    result = runner.run(unittest.TestSuite(kept))
    summary.update(
        status="ran",
        tests_run=result.testsRun,
        failures=len(result.failures),
        errors=len(result.errors),
        skipped=len(result.skipped),
        excluded=[case.id() for case in dropped],
        outcomes=result.outcomes,
    )
    return _write(result_path, summary)


def _write(path, summary):
    with open(path, "w") as handle:
        json.dump(summary, handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
