"""BROKEN: collect_children reaps with waitpid(-1), taking children the server did not spawn."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-011",)


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
