"""Axis labels in words with units: the one table every figure of hepscale uses."""

from __future__ import annotations

__all__ = ["OBSERVABLE_LABELS", "observable_label", "RUN_COLUMN_LABELS", "run_column_label"]

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


#: axis label of each column of the runs table (:mod:`hepscale.runs.table`); ``{unit}`` is the
#: data unit of the runs ("tokens" for generative models, "jets" for taggers)
RUN_COLUMN_LABELS: dict[str, str] = {
    "n_params_non_embedding": "Non-embedding parameters N",
    "n_params": "Parameters N (with embeddings)",
    "n_params_total": "Parameters N (with embeddings)",
    "tokens_seen": "Training {unit} seen D",
    "unique_tokens": "Unique training {unit} U",
    "items_seen": "Training {unit} seen D",
    "unique_items": "Unique training {unit} U",
    "epochs": "Epochs D/U",
    "flops": "Training compute C [FLOPs]",
    "flops_non_embedding": "Training compute C, non-embedding [FLOPs]",
    "final_val_loss": "Validation loss [nats]",
    "final_train_loss": "Training loss [nats]",
    "test_loss": "Test loss [nats]",
    "evaluation.swd.mean": "Sliced Wasserstein distance",
    "evaluation.swd.floor_mean": "SWD floor (real vs real)",
    "auc": "Area under the ROC curve",
    "rejection_50": r"Background rejection $1/\varepsilon_{B}$ at $\varepsilon_{S}$ = 50%",
    "rejection_30": r"Background rejection $1/\varepsilon_{B}$ at $\varepsilon_{S}$ = 30%",
    "evaluation.auc": "Area under the ROC curve",
}

#: the words of each role of a fit (``python -m hepscale.fit``) when its column is not in the table above
_ROLE_WORDS = {"N": "Parameters N", "D": "Training {unit} D", "C": "Compute C [FLOPs]", "y": "Validation loss",
               "U": "Unique {unit} U", "metric": "Physics metric"}


def run_column_label(column: str | None, *, role: str | None = None, unit: str = "tokens") -> str:
    """The axis label of a runs-table column in words (``unit``: ``"tokens"`` or ``"jets"``): from
    :data:`RUN_COLUMN_LABELS`, else the words of its fit ``role`` (N, D, C, y, U, metric), never
    the bare column name where either is known."""
    text = RUN_COLUMN_LABELS.get(str(column)) or _ROLE_WORDS.get(str(role)) or str(column)
    return text.replace("{unit}", unit)
