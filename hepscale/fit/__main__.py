"""``python -m hepscale.fit``."""

from __future__ import annotations

from hepscale.fit._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
