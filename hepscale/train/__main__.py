"""``python -m hepscale.train`` (and ``torchrun -m hepscale.train``)."""

from __future__ import annotations

from hepscale.train.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
