"""BROKEN: BaseServer has no service_actions hook"""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

# serve_forever() then dies after its first wait: the probe of an idle loop finds it once
# (SERVE-007 owns a loop that keeps serving), and every check that serves ends
# PRECONDITION_FAILED naming SERVE-007; API-020 lists the documented methods
BREAKS = {"API-026": "FAIL", "API-029": "FAIL", "API-020": "FAIL", "SERVE-007": "FAIL"}

del BaseServer.service_actions  # noqa: F821
