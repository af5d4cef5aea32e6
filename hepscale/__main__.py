from __future__ import annotations

from hepscale.cli import main

raise SystemExit(main())
