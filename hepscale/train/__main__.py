"""``python -m hepscale.train``."""

from __future__ import annotations

from hepscale.train.trainer import main

if __name__ == "__main__":
    raise SystemExit(main())
