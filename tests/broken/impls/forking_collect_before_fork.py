"""BROKEN: process_request reaps (and waits at max_children) before every fork, as 2.7 did."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-010",)


_process_request = ForkingMixIn.process_request  # noqa: F821


def process_request(self, request, client_address):
    self.collect_children()
    _process_request(self, request, client_address)


ForkingMixIn.process_request = process_request  # noqa: F821
