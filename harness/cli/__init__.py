"""The command line: ``ssconform`` (also ``python -m harness``) and the suite run behind it.

* ``main``            argument parsing and dispatch of every ``ssconform`` command (the console script's ``main``)
* ``suite_run``       a run of the suite without argparse: plan, bound, pytest processes, records, verdict
* ``action_outputs``  outcome counts of a run as ``key=value`` lines for the GitHub Action's outputs
"""
