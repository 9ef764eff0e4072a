"""BROKEN: collect_children waits only while exactly max_children are alive, not max_children or more."""
import os as _os
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))

BREAKS = ("FORKING-013",)


def collect_children(self, *, blocking=False):
    if self.active_children is None:
        return
    while len(self.active_children) == self.max_children:  # the break: == instead of >=
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
        except ChildProcessError:
            self.active_children.discard(pid)
        except OSError:
            pass


ForkingMixIn.collect_children = collect_children  # noqa: F821
