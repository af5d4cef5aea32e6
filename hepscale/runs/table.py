"""The runs table: every finished run of a study gathered into one table.

A run is finished when its folder holds ``result.json`` (:class:`hepscale.runs.folder.RunFolder`). This
module finds those files under a study folder at any depth, flattens nested keys with dots
(``evaluation.swd.mean``), and returns a :class:`pandas.DataFrame` with one row per run. The
fitter (``python -m hepscale.fit``) and the study tooling read runs only through this module.

Run as a tool, it writes the table of a study to CSV or parquet::

    python -m hepscale.runs.table STUDY_DIR --output runs.parquet
"""

from __future__ import annotations

import json
import logging
import math
import operator
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hepscale.errors import DataError
from hepscale.runs.folder import RunFolder
from hepscale.runs.result import DEFAULT_COLUMNS, REQUIRED_KEYS

__all__ = [
    "DEFAULT_COLUMNS",
    "REQUIRED_KEYS",
    "RESULT_FILENAME",
    "apply_filters",
    "flatten",
    "gather_runs",
    "parse_filter",
    "read_runs_table",
]

logger = logging.getLogger(__name__)

#: name of the file that marks a finished run
RESULT_FILENAME = RunFolder.RESULT

#: keys whose value is kept as a list (one cell) instead of being flattened
_LIST_KEYS = ("val_loss_per_position",)


def flatten(obj: Mapping[str, Any], *, prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """Flatten nested mappings into one level with ``sep``-joined keys.

    Lists and other values are kept as they are: ``{"evaluation": {"swd": {"mean": 1.0}}}``
    becomes ``{"evaluation.swd.mean": 1.0}``.
    """
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, prefix=name, sep=sep))
        else:
            out[name] = value
    return out


def _read_result(path: Path, *, strict: bool) -> dict[str, Any] | None:
    try:
        return RunFolder(path.parent).read_result()
    except DataError as err:
        if strict:
            raise
        logger.warning("skipping %s", err)
        return None


def gather_runs(
    study_dir: str | os.PathLike[str],
    *,
    strict: bool = True,
    pattern: str = f"**/{RESULT_FILENAME}",
) -> pd.DataFrame:
    """Gather every ``result.json`` under ``study_dir`` (any depth) into a runs table.

    Parameters
    ----------
    study_dir
        Study folder; runs may sit at any depth below it.
    strict
        If True (default) a ``result.json`` that is not valid JSON or lacks one of
        :data:`REQUIRED_KEYS` raises ``ValueError`` naming the file and key; if False it is
        skipped with a logged warning.
    pattern
        Glob pattern, relative to ``study_dir``, of the result files.

    Returns
    -------
    pandas.DataFrame
        One row per run, sorted by path; nested keys flattened with dots
        (``evaluation.swd.mean``); ``val_loss_per_position`` kept as a list per cell; an extra
        column ``run_dir`` with the run folder relative to ``study_dir``.
    """
    root = Path(study_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"study folder {root} does not exist or is not a folder")
    paths = sorted(root.glob(pattern))
    rows: list[dict[str, Any]] = []
    for path in paths:
        record = _read_result(path, strict=strict)
        if record is None:
            continue
        kept = {key: record.pop(key) for key in _LIST_KEYS if key in record}
        row = flatten(record)
        row.update(kept)
        row["run_dir"] = str(path.parent.relative_to(root))
        rows.append(row)
    if not rows:
        raise FileNotFoundError(f"no finished runs ({pattern}) found under {root}")
    table = pd.DataFrame(rows)
    duplicated = table["run_id"][table["run_id"].duplicated()].unique()
    if len(duplicated):
        logger.warning("run_id(s) found in more than one folder: %s", ", ".join(map(str, duplicated[:5])))
    logger.info("gathered %d runs from %s", len(table), root)
    return table


def read_runs_table(path: str | os.PathLike[str], *, strict: bool = True) -> pd.DataFrame:
    """Read a runs table: a study folder (gathered), a CSV file, a parquet file or one JSON file.

    Parameters
    ----------
    path
        A folder (every ``result.json`` below it is gathered with :func:`gather_runs`), a
        ``.csv``, ``.parquet``/``.pq`` file, or a ``.json`` file holding one run record or a list
        of records.
    strict
        Passed to :func:`gather_runs` for folders.
    """
    source = Path(path)
    if source.is_dir():
        return gather_runs(source, strict=strict)
    if not source.exists():
        raise FileNotFoundError(f"runs table {source} does not exist")
    suffix = source.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(source)
    if suffix in {".parquet", ".pq"}:
        return pd.read_parquet(source)
    if suffix == ".json":
        with open(source, encoding="utf-8") as handle:
            data = json.load(handle)
        records = data if isinstance(data, list) else [data]
        return pd.DataFrame([flatten(record) for record in records])
    raise ValueError(f"runs table {source}: unknown format {suffix!r} (expected a folder, .csv, .parquet or .json)")


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_FILTER_RE = re.compile(r"^\s*(?P<col>[^<>=!]+?)\s*(?P<op>==|!=|<=|>=|<|>|=)\s*(?P<value>.*?)\s*$")


def parse_filter(text: str) -> tuple[str, str, Any]:
    """Parse a row filter ``"COLUMN OP VALUE"`` (OP one of ``== != <= >= < > =``).

    Values that parse as numbers are compared as numbers; ``a|b|c`` with ``==``/``!=`` means
    "one of". Returns ``(column, op, value)``.
    """
    match = _FILTER_RE.match(text)
    if not match or not match.group("value"):
        raise ValueError(f"filter {text!r}: expected 'COLUMN OP VALUE' with OP one of ==, !=, <=, >=, <, >")
    column, op, raw = match.group("col"), match.group("op"), match.group("value")
    if op == "=":
        op = "=="

    def convert(token: str) -> Any:
        try:
            return float(token)
        except ValueError:
            return token.strip("'\"")

    value: Any
    if "|" in raw and op in {"==", "!="}:
        value = [convert(token) for token in raw.split("|")]
    else:
        value = convert(raw)
        if op not in {"==", "!="} and isinstance(value, str):
            raise ValueError(f"filter {text!r}: {op} needs a number, got {raw!r}")
    return column, op, value


def apply_filters(table: pd.DataFrame, filters: Iterable[str]) -> pd.DataFrame:
    """Keep the rows of ``table`` that pass every filter (see :func:`parse_filter`).

    Raises ``KeyError`` naming the column when a filter refers to a column the table lacks.
    """
    mask = np.ones(len(table), dtype=bool)
    for text in filters:
        column, op, value = parse_filter(text)
        if column not in table.columns:
            raise KeyError(f"filter {text!r}: no column {column!r} in the runs table (columns: {_list(table.columns)})")
        series = table[column]
        if isinstance(value, list):
            values = [_coerce(series, v) for v in value]
            keep = series.isin(values).to_numpy()
            keep = ~keep if op == "!=" else keep
        else:
            keep = np.asarray(_OPERATORS[op](series, _coerce(series, value)), dtype=bool)
        mask &= keep
    return table.loc[mask].reset_index(drop=True)


def _coerce(series: pd.Series, value: Any) -> Any:
    if isinstance(value, float) and not pd.api.types.is_numeric_dtype(series):
        text = repr(value)
        return text[:-2] if text.endswith(".0") and math.isfinite(value) else text
    return value


def _list(columns: Iterable[Any], limit: int = 20) -> str:
    names = [str(c) for c in columns]
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
