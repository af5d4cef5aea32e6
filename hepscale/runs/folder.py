"""The run folder: the one owner of the files of a training run (ARCHITECTURE.md).

A run is one training job of a task, identified by the hash of its resolved config. Its
folder holds

====================  =====================================================================
``config.yaml``       the resolved training config (written at the first start)
``metrics.jsonl``     one JSON line per evaluation (step, tokens, train/val loss, lr, timing)
``checkpoints/``      ``ckpt.pt``: the latest complete checkpoint (replaced atomically)
``tokenizer.json``    generation runs: the binning of the token dataset (the sampler reads it)
``samples.parquet``   generation runs: jets sampled from the model (``hepscale sample``)
``evaluation/``       figures of ``hepscale evaluate``
``result.json``       written last and atomically; evaluation results are merged into it
``<kind>.log``        logs of the study's jobs (train, sample, evaluate)
====================  =====================================================================

A run is *finished* when ``result.json`` exists. Every tool (trainer, sampler, evaluation,
study, runs table) reaches these files through :class:`RunFolder`; no other module spells a
file name of the run folder.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hepscale.errors import DataError, HepscaleError
from hepscale.runs.result import validate_result

__all__ = ["RunFolder", "RunLockedError", "RUNS_DIR"]

logger = logging.getLogger(__name__)

#: folder of the runs inside a study folder (``runs/<run_id>``)
RUNS_DIR = "runs"


class RunLockedError(HepscaleError):
    """Another process works on the same run folder."""


class RunFolder:
    """Paths and state of one run folder.

    Parameters
    ----------
    path
        The run folder (it need not exist yet).
    """

    CONFIG = "config.yaml"
    METRICS = "metrics.jsonl"
    RESULT = "result.json"
    CHECKPOINT = "checkpoints/ckpt.pt"
    TOKENIZER = "tokenizer.json"
    SAMPLES = "samples.parquet"
    EVALUATION = "evaluation"
    LOCK = ".hepscale-run.lock"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def in_study(cls, study_dir: str | os.PathLike[str], run_id: str) -> RunFolder:
        """The folder of run ``run_id`` inside a study folder."""
        return cls(Path(study_dir) / cls.relative(run_id))

    @staticmethod
    def relative(run_id: str) -> str:
        """``runs/<run_id>``: where a study keeps a run, relative to the study folder."""
        return f"{RUNS_DIR}/{run_id}"

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    # ------------------------------------------------------------------ paths
    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def metrics(self) -> Path:
        return self.path / self.METRICS

    @property
    def result(self) -> Path:
        return self.path / self.RESULT

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def tokenizer(self) -> Path:
        return self.path / self.TOKENIZER

    @property
    def samples(self) -> Path:
        return self.path / self.SAMPLES

    @property
    def evaluation_dir(self) -> Path:
        return self.path / self.EVALUATION

    def log(self, kind: str) -> Path:
        """Log file of a job of this run (``train``, ``sample``, ``evaluate``)."""
        return self.path / f"{kind}.log"

    # ------------------------------------------------------------------ state
    @property
    def finished(self) -> bool:
        """True when the run has finished (``result.json`` exists)."""
        return self.result.is_file()

    @property
    def started(self) -> bool:
        """True when the run has a checkpoint or a result."""
        return self.checkpoint.exists() or self.result.exists()

    def read_result(self, *, validate: bool = True) -> dict[str, Any]:
        """The run's ``result.json``, checked against :class:`hepscale.runs.result.RunResult`.

        Raises
        ------
        DataError
            When the run is not finished or the file is not a valid result (not JSON, not an
            object, or, with ``validate``, a key of the schema missing or of the wrong type).
        """
        if not self.finished:
            raise DataError(f"run {self.path} is not finished ({self.result} does not exist)")
        try:
            record = json.loads(self.result.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"{self.result}: not valid JSON ({err})") from err
        if not isinstance(record, dict):
            raise DataError(f"{self.result}: expected a JSON object at the top level, got {type(record).__name__}")
        return validate_result(record, where=str(self.result)) if validate else record

    def write_result(self, record: Mapping[str, Any]) -> Path:
        """Write ``result.json`` atomically (last, when the run has finished); returns its path."""
        from hepscale._io import atomic_write_json

        validate_result(record, where=str(self.result))
        atomic_write_json(self.result, dict(record))
        return self.result

    def merge_result(self, key: str, value: Any) -> Path:
        """Set ``key`` of ``result.json`` (read, update, written atomically; every other key kept)."""
        from hepscale._io import atomic_write_json

        record = self.read_result(validate=False)
        record[key] = value
        atomic_write_json(self.result, record)
        return self.result

    def write_config(self, config: Mapping[str, Any]) -> None:
        """Write the resolved config as ``config.yaml`` (atomically)."""
        import yaml

        from hepscale._io import atomic_write_text

        atomic_write_text(self.config, yaml.safe_dump(dict(config), sort_keys=False))

    def read_metrics(self, *, drop_incomplete_last: bool = False) -> list[dict[str, Any]]:
        """The lines of ``metrics.jsonl`` (empty when there is none).

        Parameters
        ----------
        drop_incomplete_last
            Leave out, with a warning, a last line that is not valid JSON and has no line end:
            the line a process killed while appending left half-written (on resume).

        Raises
        ------
        DataError
            On a line that is not valid JSON (any line but such an incomplete last one).
        """
        if not self.metrics.is_file():
            return []
        text = self.metrics.read_text(encoding="utf-8")
        rows = text.splitlines()
        lines = []
        for n, line in enumerate(rows, 1):
            if not line.strip():
                continue
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError as err:
                if drop_incomplete_last and n == len(rows) and not text.endswith("\n"):
                    logger.warning("%s, line %d: dropping an incomplete last line (%r)", self.metrics, n, line[:80])
                    continue
                raise DataError(f"{self.metrics}, line {n}: not valid JSON ({err})") from err
        return lines

    def append_metrics(self, line: Mapping[str, Any]) -> None:
        """Append one line to ``metrics.jsonl``."""
        with open(self.metrics, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(line)) + "\n")

    def reset_metrics(self, *, up_to_step: int | None = None, drop_incomplete_last: bool = False) -> None:
        """Rewrite ``metrics.jsonl`` atomically keeping the lines up to ``up_to_step`` (None: none).

        ``drop_incomplete_last``: see :meth:`read_metrics` (a resume passes True).
        """
        from hepscale._io import atomic_write_text

        kept = [] if up_to_step is None else [
            m for m in self.read_metrics(drop_incomplete_last=drop_incomplete_last) if m["step"] <= up_to_step
        ]
        atomic_write_text(self.metrics, "".join(json.dumps(m) + "\n" for m in kept))

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold an exclusive advisory lock on the run folder (one process per run at a time).

        Raises
        ------
        RunLockedError
            When another process holds it.
        """
        from hepscale._io import exclusive_lock

        return exclusive_lock(self.path / self.LOCK, lambda lock: RunLockedError(
            f"another process is working on run {self.path} ({lock})"))
