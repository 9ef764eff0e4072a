"""Serving: run a server of the implementation under test, and always get it back.

A check's server is built from the implementation's own classes, started in a
thread of the checking process, waited for until it is ready and torn down
within a bound, whatever the implementation does.  Its handlers can record
what they do so a check can reason about intervals and order.  (The same
server in a child process, for forking servers, is
:mod:`harness.processes.server_process`.)

* ``servers``     build, start, wait for and tear down a server; leak checks
* ``instrument``  handlers that record setup/handle/finish intervals across threads and processes
"""
