"""BROKEN: collect_children reaps with waitpid(-1), taking children the server did not spawn."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

#: its collect_children() never waits at the max_children limit either (WNOHANG unless blocking):
#: FORKING-002 (at the limit collect_children waits) and FORKING-013 (it waits until fewer than
#: max_children are left) see more than max_children children
BREAKS = ("FORKING-011", "FORKING-002", "FORKING-013")


def collect_children(self, *, blocking=False):
    if self.active_children is None:
        return
    for _ in range(1000):
        try:
            pid, _status = os.waitpid(-1, 0 if blocking and self.active_children else os.WNOHANG)  # noqa: F821
        except ChildProcessError:
            self.active_children.clear()
            return
        if not pid:
            return
        self.active_children.discard(pid)


ForkingMixIn.collect_children = collect_children  # noqa: F821
