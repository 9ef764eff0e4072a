"""``python -m harness`` is ``ssconform``."""

from harness.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
