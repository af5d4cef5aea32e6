"""Scoring jets with a trained tagger run: per-jet class probabilities of any jet dataset.

:func:`load_tagger` reads a tagger run folder (its ``config.yaml`` with ``task: tagging``
and its checkpoint, which must belong to it); :func:`score_jets` turns a jet dataset into a
table with one column of probabilities per class (named after the classes, e.g. ``QCD``,
``Tbqq``) and the dataset's ``label``, ``event`` and ``jet_index`` (when present), batched, with a
progress bar, on the CPU or a GPU. ``hepscale score RUNDIR JETS.parquet --output SCORES.parquet``
is its command.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hepscale.errors import HepscaleError

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["ScoreError", "load_tagger", "score_inputs", "score_jets", "score_table"]

logger = logging.getLogger(__name__)


class ScoreError(HepscaleError, ValueError):
    """Jets that the tagger cannot score as asked (the message names the file and the labels)."""


def load_tagger(run_dir: str | os.PathLike[str], *, device: str | torch.device = "cpu") -> tuple[Any, Any, dict[str, Any]]:
    """The model (eval mode, on ``device``), run config and checkpoint of a tagger run folder.

    Raises
    ------
    CheckpointError
        When the checkpoint is missing, unreadable or belongs to another run (the run id of
        ``config.yaml`` / ``result.json``), or the run is not a tagger run.
    """
    import torch

    from hepscale.models.tagger import ParticleTransformer
    from hepscale.models.tagger_sizes import TaggerConfig
    from hepscale.runs.folder import RunFolder
    from hepscale.train.checkpoint import CheckpointError, load_checkpoint
    from hepscale.train.config import load_run_config, run_id

    run = RunFolder(run_dir)
    if not run.config.is_file():
        raise CheckpointError(f"{run.path} is not a run folder ({run.config} is missing)")
    cfg = load_run_config(run.config)
    if getattr(cfg, "task", None) != "tagging":
        raise CheckpointError(f"run {run.path} is not a tagger run ({run.config} has no 'task: tagging')")
    ckpt = load_checkpoint(run.checkpoint)
    if ckpt.get("run_id") != run_id(cfg):
        raise CheckpointError(f"checkpoint {run.checkpoint} belongs to run {ckpt.get('run_id')!r}, not to run "
                              f"{run_id(cfg)!r} of {run.config}")
    model = ParticleTransformer(TaggerConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["model"])
    model.to(torch.device(device)).eval()
    return model, cfg, ckpt


def score_inputs(model: Any, inputs: Any, *, batch: int = 1024, device: str | torch.device = "cpu",
                 progress: bool = True, desc: str = "score") -> np.ndarray:
    """Class probabilities (float64, shape (n_jets, n_classes)) of :class:`TaggerInputs`."""
    import torch
    from tqdm.auto import tqdm

    dev = torch.device(device)
    pairwise = bool(model.config.pairwise)
    n = len(inputs.mask)
    out = np.zeros((n, model.config.n_classes), dtype=np.float64)
    with torch.no_grad(), tqdm(total=n, desc=desc, unit="jet", disable=not progress) as bar:
        for i in range(0, n, batch):
            sl = slice(i, i + batch)
            x = torch.from_numpy(np.ascontiguousarray(inputs.x[sl], dtype=np.float32)).to(dev)
            mask = torch.from_numpy(np.ascontiguousarray(inputs.mask[sl], dtype=bool)).to(dev)
            p4 = torch.from_numpy(np.ascontiguousarray(inputs.p4[sl], dtype=np.float32)).to(dev) if pairwise else None
            out[sl] = torch.softmax(model(x, mask, p4).float(), -1).double().cpu().numpy()
            bar.update(len(mask))
    return out


def score_table(run_dir: str | os.PathLike[str], jets_path: str | os.PathLike[str], *, batch: int = 1024,
                device: str = "cpu", progress: bool = True, any_label: bool = False) -> pd.DataFrame:
    """The scores of a jet dataset as a table: one probability column per class, then ``label``
    (and ``event``, ``jet_index`` when the dataset has them).

    Parameters
    ----------
    any_label
        Score jets whose ``label`` is a known class the tagger was not trained on (by default
        an error; jets of unknown label, -1, are always scored).

    Raises
    ------
    ScoreError
        When the dataset holds jets of a class the run was not trained on (unless ``any_label``)
        or no jets.
    FeatureError
        When the dataset lacks the inputs of the run's feature set.
    """
    import pandas as pd

    from hepscale.jets.dataset import LABEL_NAMES, read_jets
    from hepscale.tasks.tagging.features import build_inputs

    model, cfg, ckpt = load_tagger(run_dir, device=device)
    classes = list(ckpt["classes"])
    jets = read_jets(jets_path)
    if len(jets) == 0:
        raise ScoreError(f"{jets_path}: the jet dataset holds no jets")
    labels = np.asarray(jets["label"], dtype=np.int64) if "label" in jets.fields else np.full(len(jets), -1)
    known = {name: code for code, name in LABEL_NAMES.items()}
    trained = {known.get(c, c) for c in classes}
    other = sorted({int(v) for v in np.unique(labels)} - {int(t) for t in trained if isinstance(t, int)} - {-1})
    if other and not any_label:
        counts = {LABEL_NAMES.get(v, v): int((labels == v).sum()) for v in other}
        raise ScoreError(f"{jets_path}: jets of classes the tagger of {run_dir} was not trained on ({classes}): "
                         f"{counts}; pass --any-label to score them anyway")
    inputs = build_inputs(jets, cfg.data.features, cfg.data.max_particles, source=str(jets_path))
    prob = score_inputs(model, inputs, batch=batch, device=device, progress=progress)
    table = pd.DataFrame({name: prob[:, i] for i, name in enumerate(classes)})
    table["label"] = labels
    for extra in ("event", "jet_index"):
        if extra in jets.fields:
            table[extra] = np.asarray(jets[extra])
    return table


def score_jets(run_dir: str | os.PathLike[str], jets_path: str | os.PathLike[str], output: str | os.PathLike[str],
               **kwargs: Any) -> Path:
    """Write :func:`score_table` to the parquet file ``output`` (atomically); returns its path."""
    from hepscale._io import atomic_path

    table = score_table(run_dir, jets_path, **kwargs)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out, suffix=".parquet") as tmp:
        table.to_parquet(tmp, index=False)
    logger.info("scored %d jets of %s with %s -> %s", len(table), jets_path, run_dir, out)
    return out
