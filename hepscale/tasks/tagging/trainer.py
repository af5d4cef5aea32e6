"""The classification task: a particle-transformer jet tagger on a prepared tagging dataset.

Each training item is one jet of the training split of ``data.dataset`` (written by
:func:`hepscale.tasks.tagging.data.prepare_tagging_data`): its first ``data.max_particles`` particles
(highest pT first) as the features of ``data.features`` (:mod:`hepscale.tasks.tagging.features`),
padding masked, and its class index. The data unit is the jet: ``tokens_seen`` (D) in
``metrics.jsonl`` and ``result.json`` counts jets, ``unique_tokens`` (U) the jets of the fixed
training subset (a class-stratified random subset of the shuffled training split of size
``data.unique_jets``, :func:`hepscale.tasks.tagging.data.unique_subset`); ``result.json`` says so
(``data_unit: jets``) and repeats U as ``unique_jets``.

Loss: cross entropy. Evaluation: validation cross entropy and accuracy on the first
``eval.jets`` jets of the validation split; the final evaluation also scores the whole test split:
``test_loss``, ``test_accuracy`` and, one signal class against the background class (QCD, the
first class; ``p_X / (p_X + p_QCD)`` for several classes), ``auc`` and the background rejection
``1 / eps_B`` at 50% and 30% signal efficiency with seeded bootstrap uncertainties
(:func:`hepscale.metrics.tagging.one_vs_qcd_metrics`): ``test_metrics`` holds them per signal
class, and ``auc``, ``rejection_50``, ``rejection_30`` (and ``*_std``) their mean over the signal
classes (for a binary tagger, the signal's).

Compute: the tagger's own count of training FLOPs per jet
(:func:`hepscale.models.tagger_sizes.train_flops_per_jet`), times jets seen.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hepscale.config import ConfigError
from hepscale.train.checkpoint import CheckpointError
from hepscale.train.data import EpochSampler
from hepscale.train.distributed import Runtime
from hepscale.tasks.tagging.config import TaggerTrainConfig
from hepscale.train.task import Evaluation, Task

__all__ = ["ClassificationTask", "TaggerTensors", "tagger_model_config", "FINAL_KEYS"]

#: the keys of the final evaluation in result.json
FINAL_KEYS = ("test_loss", "test_accuracy", "auc", "auc_std", "rejection_50", "rejection_50_std", "rejection_30",
              "rejection_30_std", "test_metrics", "n_test")

_EFFICIENCIES = (0.5, 0.3)


@dataclasses.dataclass
class TaggerTensors:
    """Model inputs of a split: features ``x`` [n, P, F], ``mask`` [n, P], four-momenta ``p4``
    [n, P, 4] and class indices ``y`` [n] (CPU tensors)."""

    x: torch.Tensor
    mask: torch.Tensor
    p4: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def batch(self, ids: np.ndarray | slice, device: torch.device) -> tuple[torch.Tensor, ...]:
        index = torch.as_tensor(ids) if not isinstance(ids, slice) else ids
        return tuple(t[index].to(device, non_blocking=True) for t in (self.x, self.mask, self.p4, self.y))


def split_tensors(data_dir: str | Path, split: str, *, features: str, max_particles: int) -> TaggerTensors:
    """The tensors of one split of a prepared tagging dataset (class indices from its ``class_index``).

    Raises
    ------
    DataError, ConfigError
        When the split cannot be read or lacks the inputs of the feature set (naming both).
    """
    from hepscale.tasks.tagging.data import load_split
    from hepscale.tasks.tagging.features import build_inputs

    jets = load_split(data_dir, split)
    inputs = build_inputs(jets, features, max_particles, source=f"{data_dir}/{split}")
    y = np.asarray(jets["class_index"], dtype=np.int64)
    return TaggerTensors(torch.from_numpy(np.ascontiguousarray(inputs.x, dtype=np.float32)),
                         torch.from_numpy(np.ascontiguousarray(inputs.mask, dtype=bool)),
                         torch.from_numpy(np.ascontiguousarray(inputs.p4, dtype=np.float32)), torch.from_numpy(y))


def tagger_model_config(cfg: TaggerTrainConfig, *, n_features: int, n_classes: int) -> Any:
    """The :class:`hepscale.models.tagger_sizes.TaggerConfig` of a run: a size of the table or an
    explicit shape, inputs from the data."""
    from hepscale.models.tagger_sizes import tagger_config

    m = cfg.model
    custom = {k: v for k, v in (("d_model", m.d_model), ("n_head", m.n_head), ("n_layer", m.n_layer),
                                ("n_class_layer", m.n_class_layer)) if v is not None}
    return tagger_config(m.size, n_features=n_features, n_classes=n_classes, max_particles=cfg.data.max_particles,
                         pairwise=m.pairwise, dropout=m.dropout, **custom)


class ClassificationTask(Task):
    """A particle-transformer tagger on the tagging dataset ``cfg.data.dataset`` (see the module docstring).

    Raises
    ------
    ConfigError
        When ``data.dataset`` is not set.
    """

    final_metric_keys = FINAL_KEYS
    flops_formula = ("train_flops_per_jet(model, max_particles) * batch_size * steps (3 x the forward matmul "
                     "FLOPs per padded jet; flops: the layers budget.flops_params names, all by default; "
                     "flops_total_params: all layers; flops_non_embedding: without the input embedding)")

    def __init__(self, cfg: TaggerTrainConfig) -> None:
        if not cfg.data.dataset:
            raise ConfigError("data.dataset: the prepared tagging dataset folder is required")
        self.cfg = cfg

    # ------------------------------------------------------------------ data and model
    def load(self, runtime: Runtime) -> EpochSampler:
        from hepscale.tasks.tagging.data import read_info, unique_subset
        from hepscale.tasks.tagging.features import FEATURE_SETS

        cfg, d = self.cfg, self.cfg.data
        self.runtime = runtime
        self.info = read_info(d.dataset)
        self.classes = list(self.info["classes"])
        if len(self.classes) < 2:
            raise ConfigError(f"tagging dataset {d.dataset}: needs at least two classes, has {self.classes}")
        self.train = split_tensors(d.dataset, "train", features=d.features, max_particles=d.max_particles)
        self.val = split_tensors(d.dataset, "val", features=d.features, max_particles=d.max_particles)
        for name, split in (("train", self.train), ("val", self.val)):
            if len(split) == 0:
                raise ConfigError(f"tagging dataset {d.dataset}: the {name} split holds no jets")
            bad = split.y[(split.y < 0) | (split.y >= len(self.classes))]
            if len(bad):
                raise ConfigError(f"tagging dataset {d.dataset}/{name}: class index {int(bad[0])} outside the "
                                  f"{len(self.classes)} classes {self.classes}")
        self.subset = np.asarray(unique_subset(self.train.y.numpy(), d.unique_jets, seed=int(self.info["seed"])),
                                 dtype=np.int64)
        self.tagger_config = tagger_model_config(cfg, n_features=len(FEATURE_SETS[d.features]),
                                                 n_classes=len(self.classes))
        self.n_val = min(cfg.eval.jets, len(self.val))
        self.sampler = EpochSampler(np.ones(len(self.subset), dtype=np.int64), seed=cfg.seed)
        return self.sampler

    @property
    def seq_len(self) -> int:
        return self.cfg.data.max_particles

    def model_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.tagger_config)

    def param_counts(self) -> tuple[int, int]:
        from hepscale.models.tagger_sizes import param_counts

        return param_counts(self.tagger_config)

    def train_flops_per_item(self) -> tuple[float, float]:
        from hepscale.models.tagger_sizes import train_flops_per_jet

        return train_flops_per_jet(self.tagger_config)

    def build_model(self) -> torch.nn.Module:
        from hepscale.models.tagger import ParticleTransformer

        return ParticleTransformer(self.tagger_config)

    # ------------------------------------------------------------------ loss and evaluation
    def _logits(self, model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, p4: torch.Tensor) -> torch.Tensor:
        with self.runtime.autocast:
            return model(x, mask, p4 if self.tagger_config.pairwise else None)

    def loss(self, model: torch.nn.Module, ids: np.ndarray) -> torch.Tensor:
        x, mask, p4, y = self.train.batch(self.subset[ids], self.runtime.device)
        return F.cross_entropy(self._logits(model, x, mask, p4).float(), y)

    def _predict(self, model: torch.nn.Module, data: TaggerTensors, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed cross entropy, correct predictions and jets over this process's share of the first
        ``n`` jets (summed over processes), and this process's probabilities and indices."""
        rt, batch = self.runtime, self.cfg.eval.batch_size
        ids = np.arange(rt.dist.rank, n, rt.dist.world)
        sums = torch.zeros(3, dtype=torch.float64, device=rt.device)
        probs = []
        for i in range(0, len(ids), batch):
            x, mask, p4, y = data.batch(ids[i : i + batch], rt.device)
            logits = self._logits(model, x, mask, p4).float()
            sums[0] += F.cross_entropy(logits, y, reduction="sum").double()
            sums[1] += (logits.argmax(-1) == y).double().sum()
            sums[2] += len(y)
            probs.append(torch.softmax(logits, -1).double().cpu())
        rt.dist.all_reduce(sums)
        return sums, torch.cat(probs) if probs else torch.zeros(0, len(self.classes), dtype=torch.float64)

    def evaluate(self, model: torch.nn.Module, *, final: bool) -> Evaluation:
        """Validation cross entropy and accuracy; with ``final``, the test-split metrics."""
        sums, _ = self._predict(model, self.val, self.n_val)
        val_loss, val_acc = float(sums[0] / sums[2]), float(sums[1] / sums[2])
        if not final:
            return Evaluation(val_loss, metrics={"val_accuracy": val_acc})
        return Evaluation(val_loss, metrics={"val_accuracy": val_acc}, result=self._test_metrics(model))

    def _test_metrics(self, model: torch.nn.Module) -> dict[str, Any]:
        from hepscale.metrics.tagging import one_vs_qcd_metrics

        d = self.cfg.data
        test = split_tensors(d.dataset, "test", features=d.features, max_particles=d.max_particles)
        if len(test) == 0:
            raise ConfigError(f"tagging dataset {d.dataset}: the test split holds no jets")
        rt = self.runtime
        if rt.dist.enabled:  # every process scores all of it: the metrics need every probability
            ids = np.arange(len(test))
            probs = []
            for i in range(0, len(ids), self.cfg.eval.batch_size):
                x, mask, p4, _ = test.batch(ids[i : i + self.cfg.eval.batch_size], rt.device)
                probs.append(torch.softmax(self._logits(model, x, mask, p4).float(), -1).double().cpu())
            prob = torch.cat(probs).numpy()
        else:
            _, p = self._predict(model, test, len(test))
            prob = p.numpy()
        y = test.y.numpy()
        loss = float(-np.mean(np.log(np.clip(prob[np.arange(len(y)), y], 1e-300, None))))
        per_class = one_vs_qcd_metrics(prob, y, class_names=self.classes, background=0,
                                       signal_efficiencies=_EFFICIENCIES, n_bootstraps=self.cfg.eval.bootstraps,
                                       seed=self.cfg.seed)
        out: dict[str, Any] = {"test_loss": loss, "test_accuracy": float((prob.argmax(1) == y).mean()),
                               "test_metrics": per_class, "n_test": len(y)}
        out["auc"] = _mean([m["auc"] for m in per_class.values()])
        out["auc_std"] = _mean([m["auc_std"] for m in per_class.values()])
        for eff in _EFFICIENCIES:
            key = f"rejection_{round(eff * 100)}"
            out[key] = _mean([m["rejection"][f"{eff:g}"] for m in per_class.values()])
            out[f"{key}_std"] = _mean([m["rejection_std"][f"{eff:g}"] for m in per_class.values()])
        return out

    # ------------------------------------------------------------------ checkpoint and result
    def checkpoint_keys(self) -> dict[str, Any]:
        return {"classes": self.classes, "features": self.cfg.data.features, "dataset_seed": self.info.get("seed")}

    def check_checkpoint(self, ckpt: Mapping[str, Any], path: Path) -> None:
        if ckpt.get("classes") != self.classes or ckpt.get("features") != self.cfg.data.features:
            raise CheckpointError(
                f"checkpoint {path} was trained on classes {ckpt.get('classes')} with features {ckpt.get('features')}, "
                f"the run has {self.classes} with {self.cfg.data.features}"
            )

    def result_keys(self) -> dict[str, Any]:
        return {"data_unit": "jets", "unique_jets": len(self.subset), "classes": self.classes,
                "features": self.cfg.data.features, "max_particles": self.cfg.data.max_particles,
                "pairwise": self.cfg.model.pairwise,
                "dataset": {"path": self.cfg.data.dataset, "seed": self.info.get("seed"),
                            "counts": self.info.get("counts")}}


def _mean(values: list[Any]) -> float | None:
    """Mean of the finite values (None when one is missing or infinite: not measured)."""
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return None
    return float(np.mean(values))
