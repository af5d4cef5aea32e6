"""``python -m hepscale.runs``."""

from __future__ import annotations

from hepscale.runs.table import main

if __name__ == "__main__":
    raise SystemExit(main())
