"""BROKEN: request threads inherit daemon from the serving thread instead of daemon_threads."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("THREADING-001",)


def process_request(self, request, client_address):
    if self.block_on_close:
        vars(self).setdefault("_threads", _Threads())  # noqa: F821
    thread = threading.Thread(target=self.process_request_thread, args=(request, client_address))  # noqa: F821
    self._threads.append(thread)  # the daemon flag is never set
    thread.start()


ThreadingMixIn.process_request = process_request  # noqa: F821
