"""One subject cell of the matrix: the suite on the host, stdlib inside an old interpreter.

``python -m harness.subject.cell TAG [--out DIR] [ssconform run args...]`` finds
the interpreter named by ``TAG`` (``2.7``, ``3.6``, ``3.7``, ``3.8``,
``pypy3``: :func:`harness.implementations.pythons.find_subjects`, the same finder the nox and
tox sessions use), and runs ``ssconform run --impl stdlib --subject-python
EXE`` into ``DIR`` (default ``ssconform-report/records/subject-TAG-stdlib``).
A missing interpreter is a skip: a message and exit status 0, so a matrix on
a machine without it stays green.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional, Sequence

from harness.implementations import pythons

TAGS = (*pythons.SUBJECT_VERSIONS, "pypy3")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.subject.cell", description=__doc__.splitlines()[0])
    parser.add_argument("tag", choices=TAGS)
    parser.add_argument("--out", default=None, metavar="DIR")
    args, rest = parser.parse_known_args(argv)
    found = pythons.find_subjects().get(args.tag)
    if found is None:
        print(f"subject {args.tag}: not installed here (harness.implementations.pythons found none): skipped", flush=True)
        return 0
    out = args.out or f"ssconform-report/records/subject-{args.tag}-stdlib"
    command: List[str] = ["run", "--impl", "stdlib", "--subject-python", found, "--out", out, *rest]
    print(f"subject {args.tag}: {found}; ssconform {' '.join(command)}", flush=True)
    from harness.cli import main as cli

    return int(cli.main(command) or 0)


if __name__ == "__main__":
    sys.exit(main())
