"""Coffea processors of hepscale (they import from ``hepscale`` only)."""

from __future__ import annotations

from processors.jets import (
    CUTFLOW_STEPS,
    InputError,
    JetProcessor,
    JetProcessorConfig,
    make_histograms,
)

__all__ = ["JetProcessor", "JetProcessorConfig", "InputError", "make_histograms", "CUTFLOW_STEPS"]
