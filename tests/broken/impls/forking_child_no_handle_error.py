"""BROKEN: a handler child swallows its exception without calling handle_error."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-007",)


def process_request(self, request, client_address):
    pid = os.fork()  # noqa: F821
    if pid:
        if self.active_children is None:
            self.active_children = set()
        self.active_children.add(pid)
        self.close_request(request)
        return
    status = 1
    try:
        self.finish_request(request, client_address)
        status = 0
    except Exception:
        pass  # handle_error is never called
    finally:
        try:
            self.shutdown_request(request)
        finally:
            os._exit(status)  # noqa: F821


ForkingMixIn.process_request = process_request  # noqa: F821
