"""The schema of ``result.json``: the keys every finished run has, and their types.

:class:`RunResult` is the one definition of what a run reports (ARCHITECTURE.md); the keys
that the runs table and the fitter require (:data:`REQUIRED_KEYS`) are derived from it. A
task adds its own keys beside these (generation: ``seq_len``, ``val_loss_per_position``,
``tokenizer``; every run: ``flops_total_params``, ``code_version``, ``config``; evaluation:
``evaluation``), and they are kept as they are.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hepscale.errors import DataError

__all__ = ["RunResult", "REQUIRED_KEYS", "DEFAULT_COLUMNS", "validate_result"]


@dataclass(frozen=True)
class RunResult:
    """The keys every ``result.json`` has.

    Attributes
    ----------
    run_id
        Stable hash of the resolved config.
    model
        Model size name (``Pico`` ... ``XXL``, or ``custom``).
    n_params_non_embedding, n_params_total
        N without and with the embeddings (and an untied output head).
    tokens_seen
        D: data consumed by training (tokens for generation).
    unique_tokens
        U: size of the fixed training subset, in the same unit as D.
    epochs
        D / U.
    flops
        C = 6 N B S n_steps with the N that ``flops_n`` names (total by default, the
        generation study's definition; ``flops_total_params`` and ``flops_non_embedding``: both).
    final_val_loss
        Validation loss at the end of training (None when never evaluated).
    """

    run_id: str
    model: str
    n_params_non_embedding: int
    n_params_total: int
    tokens_seen: int
    unique_tokens: int
    epochs: float
    flops: float
    final_val_loss: float | None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, where: str = "result") -> RunResult:
        """The schema's fields of a ``result.json`` record, checked (see :func:`validate_result`)."""
        validate_result(record, where=where)
        return cls(**{name: record[name] for name in REQUIRED_KEYS})


#: keys every ``result.json`` must have, in schema order
REQUIRED_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunResult))

#: default column of each fit variable in a runs table
DEFAULT_COLUMNS: dict[str, str] = {
    "N": "n_params_non_embedding",
    "D": "tokens_seen",
    "C": "flops",
    "y": "final_val_loss",
    "U": "unique_tokens",
}

_NUMBER_KEYS = ("n_params_non_embedding", "n_params_total", "tokens_seen", "unique_tokens", "epochs", "flops")


def validate_result(record: Any, *, where: str = "result") -> dict[str, Any]:
    """Check a ``result.json`` record against :class:`RunResult`; return it as a dict.

    Raises
    ------
    DataError
        Naming ``where`` and the key that is missing or has a wrong type.
    """
    if not isinstance(record, Mapping):
        raise DataError(f"{where}: expected a JSON object at the top level, got {type(record).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in record]
    if missing:
        raise DataError(f"{where}: missing required key(s) {', '.join(missing)}")
    for key in ("run_id", "model"):
        if not isinstance(record[key], str):
            raise DataError(f"{where}: {key} must be a string, got {record[key]!r}")
    for key in _NUMBER_KEYS:
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"{where}: {key} must be a finite number, got {value!r}")
    loss = record["final_val_loss"]
    if loss is not None and (isinstance(loss, bool) or not isinstance(loss, (int, float))):
        raise DataError(f"{where}: final_val_loss must be a number or null, got {loss!r}")
    return dict(record)
