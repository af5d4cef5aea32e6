"""A third task defined outside the library: regression of the jet mass from the constituents.

It exists to prove that a task is one folder (here one module) plus one registry line
(``HEPSCALE_TASKS=_regression_task:SPEC``): it runs through ``study plan``, the local executor,
``study finish`` and the HTCondor pool harness without any change to ``hepscale/``.

The data: the jets of the study split at random into train/validation (``data.split``), each jet
as its ``P`` hardest constituents ``(log pT, deta, dphi)`` and the target ``log(mass / GeV)``.
The model: a small DeepSets network (per-constituent MLP, masked sum, MLP) of a size of
:data:`SIZES`; the loss: mean squared error on the standardised target.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hepscale.study.config import DataSection, GridSection, StudyConfig
from hepscale.tasks.spec import Checker, TaskKeys, TaskSpec
from hepscale.tasks.tagging.config import TaggerTrainConfig
from hepscale.train.task import Evaluation, Task

#: model sizes: width of the DeepSets network (one hidden layer in each MLP)
SIZES = {"S": {"n_layer": 1, "n_head": 1, "d_model": 8}, "M": {"n_layer": 1, "n_head": 1, "d_model": 32}}
#: the file of a prepared regression dataset written last
INFO = "info.json"


@dataclass
class RegressionTrainConfig(TaggerTrainConfig):
    """The tagger's training config (optimizer, budgets in jets, checkpoints) with its own task name."""

    task: Literal["regression"] = "regression"  # type: ignore[assignment]


@dataclass
class SplitSection:
    """``val_fraction`` of the jets for validation, drawn with ``seed``."""

    val_fraction: float = 0.3
    seed: int = 1


@dataclass
class RegressionData(DataSection):
    split: SplitSection = field(default_factory=SplitSection)


@dataclass
class RegressionGrid(GridSection):
    jets: list[int] | None = None
    unique_jets: list[int | None] = field(default_factory=lambda: [None])
    max_jets: int | None = None


@dataclass
class RegressionStudy(StudyConfig):
    data: RegressionData = field(default_factory=RegressionData)
    grid: RegressionGrid = field(default_factory=RegressionGrid)


def prepare_regression(jets: str, folder: Path, *, val_fraction: float, seed: int, max_particles: int = 32) -> None:
    """Write ``train.npz`` and ``val.npz`` (inputs ``x`` [n, P, 3], ``mask``, target ``y``), then ``info.json``."""
    from hepscale.jets.dataset import read_jets

    arr = read_jets(jets)
    n = len(arr)
    x = np.zeros((n, max_particles, 3), dtype=np.float32)
    mask = np.zeros((n, max_particles), dtype=bool)
    for i, consts in enumerate(arr["constituents"]):
        k = min(len(consts), max_particles)
        x[i, :k, 0] = np.log(np.asarray(consts["pt"][:k], dtype=np.float64))
        x[i, :k, 1] = np.asarray(consts["deta"][:k])
        x[i, :k, 2] = np.asarray(consts["dphi"][:k])
        mask[i, :k] = True
    y = np.log(np.maximum(np.asarray(arr["mass"], dtype=np.float64), 1.0)).astype(np.float32)
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(val_fraction * n))
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in (("val", order[:n_val]), ("train", order[n_val:])):
        np.savez(folder / f"{name}.npz", x=x[ids], mask=mask[ids], y=y[ids])
    (folder / INFO).write_text(json.dumps({"n_train": n - n_val, "n_val": n_val, "mean": float(y.mean()),
                                           "std": float(y.std() or 1.0)}))


class RegressionTask(Task):
    """The trainer's side: DeepSets on the prepared arrays, mean squared error."""

    def __init__(self, cfg: RegressionTrainConfig) -> None:
        self.cfg = cfg

    def load(self, runtime: Any) -> Any:
        import torch

        from hepscale.train.data import EpochSampler

        self.runtime = runtime
        folder = Path(self.cfg.data.dataset)
        info = json.loads((folder / INFO).read_text())
        self.splits = {}
        for name in ("train", "val"):
            with np.load(folder / f"{name}.npz") as f:
                y = (f["y"] - info["mean"]) / info["std"]
                self.splits[name] = (torch.from_numpy(f["x"]), torch.from_numpy(f["mask"]), torch.from_numpy(y))
        n = len(self.splits["train"][2])
        u = n if self.cfg.data.unique_jets is None else min(int(self.cfg.data.unique_jets), n)
        self.subset = np.sort(np.random.default_rng(self.cfg.seed).permutation(n)[:u])
        return EpochSampler(np.ones(u, dtype=np.int64), seed=self.cfg.seed)

    @property
    def seq_len(self) -> int:
        return int(self.cfg.data.max_particles)

    def model_config(self) -> dict[str, Any]:
        return {"d_model": SIZES[self.cfg.model.size]["d_model"]}

    def param_counts(self) -> tuple[int, int]:
        d = SIZES[self.cfg.model.size]["d_model"]
        n = (3 * d + d) + (d * d + d) + (d + 1)
        return n, n

    def build_model(self) -> Any:
        import torch

        d = SIZES[self.cfg.model.size]["d_model"]

        class DeepSets(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.phi = torch.nn.Sequential(torch.nn.Linear(3, d), torch.nn.ReLU())
                self.rho = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.ReLU(), torch.nn.Linear(d, 1))

            def forward(self, x: Any, mask: Any) -> Any:
                h = (self.phi(x) * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
                return self.rho(h).squeeze(-1)

        return DeepSets()

    def _mse(self, model: Any, split: str, ids: Any) -> Any:
        x, mask, y = (t[ids].to(self.runtime.device) for t in self.splits[split])
        return ((model(x, mask.float()) - y) ** 2).mean()

    def loss(self, model: Any, ids: np.ndarray) -> Any:
        return self._mse(model, "train", self.subset[ids])

    def evaluate(self, model: Any, *, final: bool) -> Evaluation:
        return Evaluation(float(self._mse(model, "val", np.arange(len(self.splits["val"][2])))))


class RegressionSpec(TaskSpec):
    """Jet-mass regression (see the module docstring)."""

    name = "regression"
    unit = "jets"
    keys = TaskKeys(data="jets", unique="unique_jets", largest="max_jets", unique_field="data.unique_jets",
                    dataset_field="data.dataset", table="the regression sizes")
    dataset_key = "regression"
    prepared_info = INFO
    train_example = "tagger_cpu.yaml"

    def train_config_class(self) -> type:
        return RegressionTrainConfig

    def trainer_task(self, cfg: Any) -> Task:
        return RegressionTask(cfg)

    def study_class(self) -> type[StudyConfig]:
        return RegressionStudy

    def size_table(self) -> dict[str, Any]:
        return dict(SIZES)

    def check_study(self, study: Any, bad: Checker) -> None:
        if not 0 < study.data.split.val_fraction < 1:
            raise bad("data.split.val_fraction", f"expected a fraction in (0, 1), got {study.data.split.val_fraction}")

    def data_keys(self, study: Any, jets_key: str, code_version: str) -> dict[str, str]:
        from hepscale.study.data import settings_hash

        return {"regression": settings_hash({"jets": jets_key, "split": dataclasses.asdict(study.data.split),
                                             "code": code_version})}

    def data_paths(self, study: Any, keys: dict[str, str]) -> dict[str, str]:
        return {"regression": f"data/regression-{keys['regression']}"}

    def prepare(self, study: Any, jets: str, root: Path, paths: dict[str, str], keys: dict[str, str]) -> None:
        from hepscale.study.prepare import stamp_ok, write_stamp

        folder = root / paths["regression"]
        if not stamp_ok(folder, keys["regression"], folder / INFO):
            s = study.data.split
            prepare_regression(jets, folder, val_fraction=s.val_fraction, seed=s.seed)
            write_stamp(folder, keys["regression"], dataclasses.asdict(s))

    def plan_rows(self, study: Any, runs: Sequence[Any], root: Path) -> list[Any]:
        from hepscale.study.plan import PlanRow
        from hepscale.train.budget import steps_for_budget

        rows = []
        for run in runs:
            cfg = run.config
            d = SIZES[cfg.model.size]["d_model"]
            n = (3 * d + d) + (d * d + d) + (d + 1)
            B, S = cfg.data.batch_size, cfg.data.max_particles
            per_step = 6.0 * n * B * S  # the trainer's C = 6 N B S steps
            steps = steps_for_budget(cfg.budget, batch_size=B, mean_units=1.0, flops_per_step=per_step)
            rows.append(PlanRow(run.run_id, run.model, n, n, float(steps * B), None, None, steps,
                                per_step * steps, per_step * steps, cfg.optim.lr, cfg.seed))
        return rows

    def model_shape(self, cfg: Any) -> tuple[int, int, int]:
        s = SIZES[cfg.model.size]
        return s["n_layer"], s["n_head"], s["d_model"]

    def seq_len(self, cfg: Any) -> int:
        return int(cfg.data.max_particles)

    def summary_table(self, table: Any) -> str:
        lines = [f"{'model':<5} {'N':>9} {'D':>9} {'val MSE':>9}"]
        for _, row in table.sort_values("n_params_non_embedding").iterrows():
            lines.append(f"{row['model']:<5} {row['n_params_non_embedding']:>9.3g} {row['items_seen']:>9.3g} "
                         f"{row['final_val_loss']:>9.4f}")
        return "\n".join(lines)


#: the spec: register with ``HEPSCALE_TASKS=_regression_task:SPEC`` (tests/ on the Python path)
SPEC = RegressionSpec()
