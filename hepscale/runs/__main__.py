"""``python -m hepscale.runs``."""

from __future__ import annotations

from hepscale.runs.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
