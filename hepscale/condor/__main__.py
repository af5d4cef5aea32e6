from __future__ import annotations

from hepscale.condor.cli import main

raise SystemExit(main())
