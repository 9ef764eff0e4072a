"""BROKEN: collect_children keeps a child that someone else reaped (ECHILD is ignored, as in 3.3)."""
import os as _os
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-014",)


def collect_children(self, *, blocking=False):
    if self.active_children is None:
        return
    while len(self.active_children) >= self.max_children:
        try:
            pid, _ = _os.waitpid(-1, 0)
            self.active_children.discard(pid)
        except ChildProcessError:
            self.active_children.clear()
        except OSError:
            break
    for pid in self.active_children.copy():
        try:
            pid, _ = _os.waitpid(pid, 0 if blocking else _os.WNOHANG)
            self.active_children.discard(pid)
        except OSError:  # the break: ChildProcessError is not told apart
            pass


ForkingMixIn.collect_children = collect_children  # noqa: F821
