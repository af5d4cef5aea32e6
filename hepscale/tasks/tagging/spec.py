"""The tagging task's spec: jet classification with particle transformers.

A tagging run trains a tagger (:mod:`hepscale.models.tagger`, sizes of ``configs/taggers.yaml``)
on the class splits of its study (:func:`hepscale.tasks.tagging.data.prepare_tagging_data`),
with an input feature set and a number of particles per jet P as grid axes; D and U count jets.
The trainer scores the test split itself (AUC, background rejection in ``result.json``); the
evaluation job draws the run's ROC (:mod:`hepscale.tasks.tagging.evaluate`). No torch at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.tasks.spec import Checker, TaskKeys, TaskSpec

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder
    from hepscale.study.config import FitSpec, StudyConfig
    from hepscale.study.grid import Run
    from hepscale.study.plan import PlanRow
    from hepscale.train.task import Task

__all__ = ["TaggingSpec", "SPEC"]

#: training config field of each grid axis of a tagging study
_AXIS_FIELDS = {"features": "data.features", "max_particles": "data.max_particles"}


class TaggingSpec(TaskSpec):
    """Jet tagging (see the module docstring)."""

    name = "tagging"
    aliases = ("classification",)
    run_id_name = "classification"  # tagger run ids were first hashed with task: classification
    unit = "jets"
    keys = TaskKeys(data="jets", unique="unique_jets", largest="max_jets", unique_field="data.unique_jets",
                    dataset_field="data.dataset", table="taggers.yaml")
    dataset_key = "tagging"
    prepared_info = "info.json"
    train_example = "tagger_cpu.yaml"
    quickstart = Path("configs") / "studies" / "tagging_cpu.yaml"
    gpu_inference_kinds = frozenset({"evaluate"})
    grid_axes_names = tuple(_AXIS_FIELDS)
    refused_keys = {
        "data.tokenizer": "a tagging study reads its jets as particles and has no tokenizer; remove the section (the "
                          "classes and splits are set in data.tagging)",
        "data.reference": "a tagging study has no SWD reference: its test split is set by data.tagging.fractions",
    }

    # ------------------------------------------------------------------ configs
    def train_config_class(self) -> type:
        from hepscale.tasks.tagging.config import TaggerTrainConfig

        return TaggerTrainConfig

    def trainer_task(self, cfg: Any) -> Task:
        from hepscale.tasks.tagging.trainer import ClassificationTask

        return ClassificationTask(cfg)

    def study_class(self) -> type[StudyConfig]:
        from hepscale.tasks.tagging.study import TaggingStudy

        return TaggingStudy

    def size_table(self) -> dict[str, Any]:
        from hepscale.models.tagger_sizes import tagger_sizes

        return dict(tagger_sizes())

    def check_study(self, study: Any, bad: Checker) -> None:
        from hepscale.tasks.tagging.study import check_tagging_sections

        check_tagging_sections(study, bad)

    def check_train(self, study: Any, bad: Checker, base: Any) -> None:
        from hepscale.tasks.tagging.study import check_tagging_inputs

        check_tagging_inputs(study, bad, base)

    def default_fits(self) -> list[FitSpec]:
        """Background rejection at 50% signal efficiency against the loss."""
        from hepscale.study.config import FitSpec

        return [FitSpec(name="rejection_vs_loss", law="proxy",
                        options={"columns": {"metric": "rejection_50", "metric_err": "rejection_50_std"}})]

    def grid_axes(self, study: Any) -> dict[str, list[Any] | None]:
        return {"features": study.grid.features, "max_particles": study.grid.max_particles}

    def axis_field(self, axis: str) -> str:
        return _AXIS_FIELDS[axis]

    def check_fit(self, index: int, options: Any, bad: Checker) -> None:
        """A proxy fit must name its metric: a tagging study has no SWD."""
        metric = options.columns.get("metric")
        if options.law == "proxy" and str(metric).startswith("evaluation.swd"):
            raise bad(f"fit.fits[{index}].options", f"a tagging study has no SWD ({metric}); name the metric, "
                      "e.g. {columns: {metric: rejection_50, metric_err: rejection_50_std}}")

    # ------------------------------------------------------------------ data
    def data_keys(self, study: Any, jets_key: str, code_version: str) -> dict[str, str]:
        from hepscale.config import to_dict
        from hepscale.study.data import settings_hash
        from hepscale.tasks.tagging.data import FORMAT_VERSION

        code = {"version": code_version, "tagging_format": FORMAT_VERSION}
        return {"tagging": settings_hash({"jets": jets_key, "tagging": to_dict(study.data.tagging), "code": code})}

    def data_paths(self, study: Any, keys: dict[str, str]) -> dict[str, str]:
        return {"tagging": f"data/tagging-{keys['tagging']}"}

    def prepare(self, study: Any, jets: str, root: Path, paths: dict[str, str], keys: dict[str, str]) -> None:
        """Split the jets into the tagging dataset unless up to date; the jets must have the fields
        of every feature set of the study."""
        import logging

        from hepscale.config import to_dict
        from hepscale.study.prepare import stamp_ok, write_stamp
        from hepscale.tasks.tagging.data import prepare_tagging_data
        from hepscale.tasks.tagging.study import check_jets_fields

        folder = root / paths["tagging"]
        if stamp_ok(folder, keys["tagging"], folder / self.prepared_info):
            logging.getLogger(__name__).info("tagging data: up to date (%s)", folder)
            return
        check_jets_fields(study, jets)
        t = study.data.tagging
        prepare_tagging_data(jets, folder, classes=tuple(t.classes), fractions=tuple(t.fractions), seed=t.seed,
                             balance=t.balance)
        write_stamp(folder, keys["tagging"], {"jets": jets, "tagging": to_dict(t)})

    # ------------------------------------------------------------------ plan and jobs
    def plan_rows(self, study: StudyConfig, runs: Sequence[Run], root: Path) -> list[PlanRow]:
        from hepscale.tasks.tagging.plan import plan_rows

        return plan_rows(study, runs, root)  # type: ignore[arg-type]

    def plan_axes(self) -> dict[str, str]:
        return {"features": "features", "max_particles": "P"}

    def plan_legend(self, flops_kind: str) -> tuple[str, str]:
        return ("N: non-embedding parameters; P: particles per jet; D: jets seen; U: unique jets ('all': the whole "
                f"training split); C: the tagger's training FLOPs per jet x D ({flops_kind})",
                "FLOPs with the embedding layers")

    def job_commands(self, study: Any, runs: Sequence[Run], label: str) -> dict[str, list[tuple[str, list[str]]]]:
        """``evaluate`` (the run's ROC figure), with evaluation and figures enabled: the trainer has
        already scored the test split."""
        e = study.evaluation
        if not (e.enabled and e.figures):
            return {}
        return {"evaluate": [(r.run_id, ["evaluate", r.folder, "--bootstraps", str(e.bootstraps), "--seed",
                                         str(e.seed), "--label", label]) for r in runs]}

    def job_inputs(self, study: Any, paths: dict[str, str], run_dir: str,
                   external: dict[str, str]) -> dict[str, list[str]]:
        return {"train": [paths["tagging"], run_dir], "evaluate": [run_dir, paths["tagging"]]}

    def job_done(self, kind: str, run: RunFolder, study: Any) -> bool:
        from hepscale.tasks.tagging.evaluate import evaluated_with

        return kind == "evaluate" and evaluated_with(run, study.evaluation)

    # ------------------------------------------------------------------ models
    def model_shape(self, cfg: Any) -> tuple[int, int, int]:
        """Layers including the class-attention blocks."""
        from hepscale.models.tagger_sizes import tagger_sizes

        m = cfg.model
        row = tagger_sizes().get(m.size, {})
        extra = int(row.get("n_class_layer", 2))
        n_layer, n_head, d_model = (int(getattr(m, k) if getattr(m, k) is not None else row[k])
                                    for k in ("n_layer", "n_head", "d_model"))
        return n_layer + extra, n_head, d_model

    def seq_len(self, cfg: Any) -> int:
        return int(cfg.data.max_particles)

    # ------------------------------------------------------------------ results
    def summary_table(self, table: Any) -> str:
        from hepscale.tasks.tagging.results import tagging_summary_table

        return tagging_summary_table(table)

    def figures(self, table: Any, root: Path, *, label: str) -> list[Path]:
        from hepscale.tasks.tagging.results import tagging_figures

        return list(tagging_figures(table, root))

    def evaluate_command(self, args: Any) -> int:
        from hepscale.tasks.tagging.cli import evaluate_command

        return evaluate_command(args)


#: the spec of the tagging task
SPEC = TaggingSpec()
