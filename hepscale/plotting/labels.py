"""Axis labels in words with units: the one table every figure of hepscale uses."""

from __future__ import annotations

__all__ = ["OBSERVABLE_LABELS", "observable_label"]

#: axis label of each jet observable of the jet dataset (units in brackets)
OBSERVABLE_LABELS: dict[str, str] = {
    "pt": r"Jet $p_{T}$ [GeV]",
    "eta": r"Jet $\eta$",
    "phi": r"Jet $\phi$ [rad]",
    "mass": "Jet mass [GeV]",
    "msoftdrop": "Soft-drop mass [GeV]",
    "tau1": r"$\tau_{1}$",
    "tau2": r"$\tau_{2}$",
    "tau3": r"$\tau_{3}$",
    "tau21": r"$\tau_{21}$",
    "tau32": r"$\tau_{32}$",
    "d2": r"$D_{2}^{(\beta=1)}$",
    "n_constituents": "Number of constituents",
}


def observable_label(name: str) -> str:
    """The axis label of an observable (its name when the table does not know it)."""
    return OBSERVABLE_LABELS.get(name, name)
