"""BROKEN: the default handle_error() prints its header lines to stdout (2.7 behaviour)."""
# ruff: noqa: F821  (names come from the executed stdlib source)
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("PIPELINE-010",)


def handle_error(self, request, client_address):
    import traceback

    print("-" * 40)  # BROKEN: stdout
    print("Exception occurred during processing of request from", client_address)
    traceback.print_exc()
    print("-" * 40)


BaseServer.handle_error = handle_error
