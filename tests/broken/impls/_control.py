"""The unbroken base of every broken implementation: the running
interpreter's socketserver source executed into this module's namespace."""
import socketserver as _stdlib

with open(_stdlib.__file__, encoding="utf-8") as _source:
    exec(compile(_source.read(), _stdlib.__file__, "exec"))
