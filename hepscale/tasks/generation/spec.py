"""The generation task's spec: next-token prediction on tokenized jets, evaluated with the SWD.

A generation run trains a GPT (:mod:`hepscale.models.gpt`, sizes of ``configs/models.yaml``) on
the token dataset of its study (:mod:`hepscale.tasks.generation.prepare`); D and U count tokens.
After training, ``hepscale sample`` draws jets from it and ``hepscale evaluate`` measures the
sliced Wasserstein distance to the reference jets at the model's resolution
(:mod:`hepscale.tasks.generation.evaluate`). No torch at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.tasks.spec import Checker, ExternalFile, TaskKeys, TaskSpec

if TYPE_CHECKING:
    from hepscale.runs.folder import RunFolder
    from hepscale.study.config import FitSpec, StudyConfig
    from hepscale.study.grid import Run
    from hepscale.study.plan import PlanRow
    from hepscale.train.task import Task

__all__ = ["GenerationSpec", "SPEC"]


class GenerationSpec(TaskSpec):
    """Next-token generation of jets (see the module docstring)."""

    name = "generation"
    unit = "tokens"
    keys = TaskKeys(data="tokens", unique="unique_tokens", largest="max_tokens", unique_field="data.unique_tokens",
                    dataset_field="data.tokens", table="models.yaml")
    dataset_key = "tokens"
    prepared_info = "tokenizer.json"
    train_example = "quick_cpu.yaml"
    quickstart = Path("configs") / "studies" / "generation_phase1_cpu.yaml"
    gpu_inference_kinds = frozenset({"sample"})
    refused_keys = {"data.tagging": "only a tagging study (task: tagging) splits its jets into classes; a generation "
                                    "study tokenizes them (data.tokenizer)"}

    # ------------------------------------------------------------------ configs
    def train_config_class(self) -> type:
        from hepscale.train.config import TrainConfig

        return TrainConfig

    def trainer_task(self, cfg: Any) -> Task:
        from hepscale.tasks.generation.trainer import GenerationTask

        return GenerationTask(cfg)

    def study_class(self) -> type[StudyConfig]:
        from hepscale.tasks.generation.study import GenerationStudy

        return GenerationStudy

    def size_table(self) -> dict[str, Any]:
        from hepscale.models.sizes import model_sizes

        return dict(model_sizes())

    def fill_defaults(self, study: Any) -> None:
        super().fill_defaults(study)
        if study.data.tokenizer is None:
            study.data.tokenizer = {}

    def check_study(self, study: Any, bad: Checker) -> None:
        from hepscale.tasks.generation.study import check_generation_study

        check_generation_study(study, bad)

    def default_fits(self) -> list[FitSpec]:
        """Loss against N, and the SWD against the loss."""
        from hepscale.study.config import FitSpec

        return [FitSpec(name="loss_vs_N", law="log", x="N"), FitSpec(name="swd_vs_loss", law="proxy")]

    def fit_needs_evaluation(self, fit: FitSpec) -> bool:
        """A proxy fit reads the SWD of the evaluation."""
        return fit.law == "proxy"

    # ------------------------------------------------------------------ data
    def data_keys(self, study: Any, jets_key: str, code_version: str) -> dict[str, str]:
        from hepscale.config import to_dict
        from hepscale.study.data import settings_hash
        from hepscale.tokens.tokenizer import SPLIT_LAYOUT, TokenizerConfig

        code = {"version": code_version, "split_layout": SPLIT_LAYOUT}
        tokenizer = to_dict(TokenizerConfig(**(study.data.tokenizer or {})))
        return {"tokens": settings_hash({"jets": jets_key, "tokenizer": tokenizer, "code": code})}

    def data_paths(self, study: Any, keys: dict[str, str]) -> dict[str, str]:
        d = study.data
        return {"tokens": f"data/tokens-{keys['tokens']}",
                "reference": str(Path(d.reference).resolve()) if d.reference else f"data/reference-{keys['tokens']}.parquet"}

    def prepare(self, study: Any, jets: str, root: Path, paths: dict[str, str], keys: dict[str, str]) -> None:
        from hepscale.tasks.generation.prepare import prepare_tokens

        prepare_tokens(study, jets, root, paths, keys)

    def external_inputs(self, study: Any) -> list[ExternalFile]:
        """The SWD reference ``data.reference``, when set."""
        d = study.data
        return [ExternalFile("data.reference", str(Path(d.reference).resolve()), "reference")] if d.reference else []

    # ------------------------------------------------------------------ plan and jobs
    def plan_rows(self, study: StudyConfig, runs: Sequence[Run], root: Path) -> list[PlanRow]:
        from hepscale.tasks.generation.plan import plan_rows

        return plan_rows(study, runs, root)

    def plan_legend(self, flops_kind: str) -> tuple[str, str]:
        n = "N with embeddings" if flops_kind == "all layers" else flops_kind
        return ("N: non-embedding parameters; D: tokens seen; U: unique tokens ('all': all of train.bin); "
                f"C = 6 N B S steps (FLOPs, {n})", "FLOPs with embeddings and output head")

    def job_commands(self, study: Any, runs: Sequence[Run], label: str) -> dict[str, list[tuple[str, list[str]]]]:
        """``sample`` (``evaluation.samples`` jets per run) and ``evaluate`` (the SWD against the
        reference), with evaluation enabled."""
        from hepscale.runs.folder import RunFolder
        from hepscale.study.data import data_paths

        e = study.evaluation
        if not e.enabled:
            return {}
        reference = data_paths(study)["reference"]
        sample = [(r.run_id, ["sample", r.folder, "--n", str(e.samples), "--output", f"{r.folder}/{RunFolder.SAMPLES}",
                              "--seed", str(e.seed), "--batch", str(e.batch)]) for r in runs]
        evaluate = [(r.run_id, ["evaluate", r.folder, "--reference", reference, "--n", str(e.n), "--bootstraps",
                                str(e.bootstraps), "--projections", str(e.projections), "--seed", str(e.seed),
                                "--label", label] + ([] if e.floor else ["--no-floor"])
                     + ([] if e.figures else ["--no-figures"])) for r in runs]
        return {"sample": sample, "evaluate": evaluate}

    def job_inputs(self, study: Any, paths: dict[str, str], run_dir: str,
                   external: dict[str, str]) -> dict[str, list[str]]:
        from hepscale.runs.folder import RunFolder

        run = {k: f"{run_dir}/{getattr(RunFolder, k)}" for k in ("SAMPLES", "RESULT", "CONFIG", "TOKENIZER")}
        reference = external.get("data.reference", paths["reference"])
        return {"train": [paths["tokens"], run_dir], "sample": [run_dir],
                "evaluate": [run["SAMPLES"], run["RESULT"], run["CONFIG"], run["TOKENIZER"], reference]}

    def job_outputs(self, run_dir: str, *, figures: bool) -> dict[str, list[str]]:
        """A sample job's ``samples.parquet``, an evaluate job's result (and figures)."""
        from hepscale.runs.folder import RunFolder

        return {"sample": [f"{run_dir}/{RunFolder.SAMPLES}"], **super().job_outputs(run_dir, figures=figures)}

    def job_done(self, kind: str, run: RunFolder, study: Any) -> bool:
        """Sampled: the samples have the study's size and seed; evaluated: the result holds an SWD
        with every setting of the study's evaluation."""
        from hepscale.tasks.generation.evaluate import evaluated_with, sampled_with

        if kind == "sample":
            return sampled_with(run, n=study.evaluation.samples, seed=study.evaluation.seed)
        if kind == "evaluate":
            return evaluated_with(run, study.evaluation)
        return False

    # ------------------------------------------------------------------ models
    def model_shape(self, cfg: Any) -> tuple[int, int, int]:
        from hepscale.models.sizes import model_sizes

        m = cfg.model
        row = model_sizes().get(m.size, {})
        return tuple(int(getattr(m, k) if getattr(m, k) is not None else row[k])  # type: ignore[return-value]
                     for k in ("n_layer", "n_head", "d_model"))

    def seq_len(self, cfg: Any) -> int:
        return int(cfg.data.seq_len)

    # ------------------------------------------------------------------ results
    def summary_table(self, table: Any) -> str:
        from hepscale.tasks.generation.results import summary_table

        return summary_table(table)

    def figures(self, table: Any, root: Path, *, label: str) -> list[Path]:
        """SWD vs N (when runs were evaluated) and :func:`~hepscale.tasks.generation.results.generation_figures`."""
        from hepscale.tasks.generation.results import SWD_FIGURE, generation_figures, plot_swd_vs_n

        out: list[Path] = []
        if "evaluation.swd.mean" in table.columns:
            out += plot_swd_vs_n(table, root / SWD_FIGURE, label=label)
        return out + generation_figures(table, root, label=label)

    def evaluate_command(self, args: Any) -> int:
        from hepscale.tasks.generation.cli import evaluate_command

        return evaluate_command(args)


#: the spec of the generation task
SPEC = GenerationSpec()
