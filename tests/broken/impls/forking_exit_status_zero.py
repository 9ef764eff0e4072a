"""BROKEN: a handler child exits with status 0 even after an exception."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-005",)


def process_request(self, request, client_address):
    pid = os.fork()  # noqa: F821
    if pid:
        if self.active_children is None:
            self.active_children = set()
        self.active_children.add(pid)
        self.close_request(request)
        return
    try:
        self.finish_request(request, client_address)
    except Exception:
        self.handle_error(request, client_address)
    finally:
        try:
            self.shutdown_request(request)
        finally:
            os._exit(0)  # noqa: F821  (always "success")


ForkingMixIn.process_request = process_request  # noqa: F821
