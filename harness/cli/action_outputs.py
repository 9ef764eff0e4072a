"""Outcome counts of a run as ``key=value`` lines, for the GitHub Action's outputs.

Theory of operation
-------------------
The composite action (``action.yml``) runs ``ssconform run`` and then
``python -m harness.cli.action_outputs RECORDS_DIR``, appending what this prints
to ``$GITHUB_OUTPUT``.  Every record under the directory is read with
:func:`harness.results.records.load_records` (so a broken record is an error, not a
zero) and the per-outcome counts of :func:`harness.results.records.summarise` are
added up.  Keys are the outcome names in lower case (``pass``, ``fail``,
``xfail`` ...), plus ``total`` (every check variant), ``unexpected`` (the
outcomes that make a run fail) and ``records`` (how many records were read).
Every key is always printed, zeros included, so a workflow can compare
``steps.X.outputs.fail == '0'`` without guarding against an empty string.

The function :func:`counts` is pure (records in, dict out); ``main`` only
reads files and prints.
"""

from __future__ import annotations

import argparse
import sys
from typing import Dict, Iterable, List, Optional

from harness.core.outcomes import BAD, Outcome
from harness.results import records


def counts(loaded: Iterable[dict]) -> Dict[str, int]:
    """Summed outcome counts over ``loaded`` records, keyed for the action's outputs."""
    total = {outcome.value.lower(): 0 for outcome in Outcome}
    number = 0
    for record in loaded:
        number += 1
        for outcome, count in records.summarise(record).items():
            key = outcome.lower()
            total[key] = total.get(key, 0) + count
    total["total"] = sum(total[outcome.value.lower()] for outcome in Outcome)
    total["unexpected"] = sum(total[outcome.value.lower()] for outcome in BAD)
    total["records"] = number
    return total


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.cli.action_outputs", description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", help="record files or directories")
    args = parser.parse_args(argv)
    try:
        loaded = [record for _, record in records.load_records(args.records)]
    except records.RecordError as exc:
        print(f"action_outputs: {exc}", file=sys.stderr)
        return 2
    for key, value in counts(loaded).items():
        print(f"{key}={value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
