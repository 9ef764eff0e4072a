"""BROKEN: server_close joins every handler thread, ignoring daemon_threads and block_on_close."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: the list it joins keeps every thread the server ever started: the bookkeeping is unbounded
#: after sequential requests (THREADING-008) and never pruned after bursts (THREADING-013)
BREAKS = ("THREADING-007", "THREADING-008", "THREADING-013")


def process_request(self, request, client_address):
    thread = threading.Thread(target=self.process_request_thread, args=(request, client_address))  # noqa: F821
    thread.daemon = self.daemon_threads
    vars(self).setdefault("_every_thread", []).append(thread)
    thread.start()


def server_close(self):
    super(ThreadingMixIn, self).server_close()  # noqa: F821
    for thread in vars(self).get("_every_thread", []):
        thread.join()


ThreadingMixIn.process_request = process_request  # noqa: F821
ThreadingMixIn.server_close = server_close  # noqa: F821
