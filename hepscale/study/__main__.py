"""``python -m hepscale.study``."""

from __future__ import annotations

from hepscale.study.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
