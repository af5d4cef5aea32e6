"""Settings of jet building and selection (``configs/process/ak8.yaml``, ``hepscale process --config``).

The settings live in the library so that studies can validate and hash them without the
processor; :class:`processors.jets.JetProcessor` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["JetProcessorConfig"]


@dataclass
class JetProcessorConfig:
    """Jet building and selection (YAML keys of ``hepscale process --config``).

    Momenta in GeV. ``puppi``: weight PF candidate four-vectors by ``PFCands_puppiWeight``
    ("auto": when the file has the branch, as CMS AK8 PUPPI jets do). ``constituents``:
    ``recluster`` clusters PF candidates with FastJet; ``pfnano`` uses the constituents CMS
    stored per AK8 jet (``FatJetPFCands``). ``max_jets``: jets kept per event after the
    selection, leading in pT first (0: all).

    Weights and data (see :mod:`hepscale.jets.inputs` and :mod:`hepscale.jets.selection`):
    ``luminosity`` (pb^-1) normalises simulation with a fileset ``xsec`` (pb) to
    ``genWeight * xsec * luminosity / sumw`` (a dataset's metadata ``lumi`` overrides it);
    ``lumi_mask``: a golden JSON applied to collision data; ``triggers``: HLT paths, an event
    is kept when it fired any of them (empty: no trigger selection).
    """

    constituents: Literal["recluster", "pfnano"] = "recluster"
    algorithm: Literal["antikt", "kt", "cambridge"] = "antikt"
    radius: float = 0.8
    puppi: Literal["auto", "on", "off"] = "auto"
    jet_pt_min: float = 300.0
    jet_eta_max: float = 2.5
    max_jets: int = 0
    max_constituents: int = 128
    softdrop_zcut: float = 0.1
    softdrop_beta: float = 0.0
    nsubjettiness_beta: float = 1.0
    r0: float = 0.8
    luminosity: float = 1.0
    lumi_mask: str | None = None
    triggers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.radius <= 0:
            raise ValueError(f"radius must be positive, got {self.radius}")
        if self.max_constituents < 1:
            raise ValueError(f"max_constituents must be at least 1, got {self.max_constituents}")
        if not self.luminosity > 0:
            raise ValueError(f"luminosity must be positive (pb^-1), got {self.luminosity}")
        if self.max_jets < 0:
            raise ValueError(f"max_jets must be 0 (all) or positive, got {self.max_jets}")
