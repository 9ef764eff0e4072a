"""Fake subject agents that misbehave on purpose (tests/subject/test_faults.py).

``python fake_agent.py MODE``:

* ``mismatch``: says hello with protocol 99, then waits for stdin to close;
* ``hang``: says a correct hello, then reads requests and never answers;
* ``die``: says a correct hello, then exits (status 9) on the first request;
* ``mute``: exits (status 3) without a word.

Every mode ends when stdin closes (``stop``), so none can outlive its test; the
waits are reads of stdin, which the supervisor closes.
"""

import json
import os
import sys

MODE = sys.argv[1]
HELLO = {"event": "hello", "protocol": 99 if MODE == "mismatch" else 1, "agent": "fake-" + MODE,
         "pid": os.getpid(), "clock": "time.monotonic",
         "python": {"implementation": "Fake", "version": "0.0", "executable": sys.executable}}

if MODE == "mute":
    sys.exit(3)
sys.stdout.write(json.dumps(HELLO) + "\n")
sys.stdout.flush()
for _ in range(1000):
    line = sys.stdin.readline()
    if not line or line.strip() == "stop":
        break
    if MODE == "die":
        os._exit(9)
