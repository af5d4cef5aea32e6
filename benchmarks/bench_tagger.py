"""Jet-tagger training and scoring throughput against minimal torch loops, in the same process.

    python benchmarks/bench_tagger.py --size Pico --batch-size 64 --steps 40 --warmup 40 --repeats 3 --threads 1

Training: both loops train the same particle-transformer tagger (same size, features, padded
length P, batch of B jets, AdamW of the project's :func:`hepscale.train.optim.build_optimizer`
with the settings of ``configs/train/tagger_cpu.yaml``, gradient clipping, cross entropy, bf16
autocast on CUDA) for ``--warmup`` untimed steps then ``--steps`` timed steps. The framework is
:func:`hepscale.train.train` on a tagging data folder (its tensors, the epoch sampler, the lr
schedule, loss bookkeeping, checkpoint checks); its throughput is jets per second over the
evaluation windows after the warmup evaluation (``tokens_per_s`` of ``metrics.jsonl`` counts jets
for the classification task; evaluations and checkpoints are left out of the windows; with
``--steps <= --warmup`` there is exactly one window). The reference is plain torch on one fixed
batch of tensors already on the device. The loops alternate, starting and ending with the
reference (``--repeats`` framework runs, one more reference run). Reported: jets/s of both per
run, the ratio of the medians and of the best runs (aim >= 0.95; on a shared CPU the best-of-N
is the figure least affected by other load), and the median over framework runs of the ratio
against the geometric mean of the two reference runs around each (``ratio_adjacent_median``,
which cancels slow drifts of the machine's load). Then the trainer's step function
(:func:`hepscale.train.loop.train_step` on a run set up as :func:`hepscale.train.train` does)
and the reference step alternate single steps ``--interleave`` times (``interleaved_steps``: the
ratio of the median step times, the figure least affected by other load; it leaves out only the
loop around the step: evaluation and checkpoint checks).

Scoring: :func:`hepscale.tasks.tagging.score.score_jets` (the library function of ``hepscale score``)
on a parquet jet dataset with the run folder of the last training run, end to end: loading the
checkpoint, reading the parquet file, checking labels, building the features
(:func:`hepscale.tasks.tagging.features.build_inputs`), the batched forward passes (host arrays wrapped
into tensors each batch), softmax, and writing the scores table. The reference is a plain
``torch.no_grad`` loop of the same model at the same batch size over prebuilt tensors on the
device. Besides the end-to-end ratio, the model stage alone
(:func:`hepscale.tasks.tagging.score.score_inputs` on prebuilt inputs) is compared with the reference,
and the stages of the scoring path are timed one by one (``stages_s_median``).

Threads: the trainer does not call ``torch.set_num_threads`` (torch's default: one thread per
core, or ``OMP_NUM_THREADS``); both loops run in this process with the same setting, and
``--threads`` changes it for both.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "train" / "tagger_cpu.yaml"


# ---------------------------------------------------------------------------- data
def make_jets(path: Path, n_per_class: int, *, seed: int = 0, k_min: int = 40, k_max: int = 128) -> Path:
    """Synthetic QCD (one prong) and top (Tbqq, three prongs) jets of ``k_min``-``k_max`` massless
    constituents with PDG ids and charges, written as a jet dataset."""
    from hepscale.jets.dataset import LABELS, build_jets, write_jets

    rng = np.random.default_rng(seed)
    charge_of = {22: 0, 130: 0, 211: 1, -211: -1, 11: -1, -13: 1}
    pids = np.array(list(charge_of))
    charges = np.array([charge_of[int(p)] for p in pids])
    parts = []
    for name, prongs in (("QCD", 1), ("Tbqq", 3)):
        k = rng.integers(k_min, k_max + 1, n_per_class)
        tot = int(k.sum())
        axes = rng.normal(0.0, 0.25, (n_per_class, prongs, 2)) * (prongs > 1)
        jet = np.repeat(np.arange(n_per_class), k)
        prong = rng.integers(0, prongs, tot)
        which = rng.integers(0, len(pids), tot)
        fields = {"pt": rng.exponential(20.0, tot) + 0.6, "eta": axes[jet, prong, 0] + rng.normal(0.0, 0.05, tot),
                  "phi": axes[jet, prong, 1] + rng.normal(0.0, 0.05, tot), "mass": np.zeros(tot),
                  "pid": pids[which], "charge": charges[which]}
        parts.append(build_jets(ak.unflatten(ak.zip(fields), k), label=LABELS[name], source=f"synthetic_{name}"))
    write_jets(path, ak.concatenate(parts))
    return path


def run_config(data: Path, args: argparse.Namespace, device: str) -> Any:
    """The framework's run config: ``configs/train/tagger_cpu.yaml`` with the benchmark's shape and budget."""
    from hepscale.train.config import load_run_config

    return load_run_config(CONFIG, [
        f"data.dataset={data}", f"model.size={args.size}", f"model.pairwise={str(args.pairwise).lower()}",
        f"data.features={args.features}", f"data.max_particles={args.max_particles}",
        f"data.batch_size={args.batch_size}", "optim.warmup_steps=0", f"budget.steps={args.warmup + args.steps}",
        f"eval.every={args.warmup}", f"eval.jets={args.batch_size}", f"eval.batch_size={args.batch_size}",
        "eval.bootstraps=2", f"checkpoint.every={10**9}", f"device={device}",
    ])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- training
def reference_step(cfg: Any, model_cfg: Any, batch: tuple[torch.Tensor, ...], device: torch.device) -> Any:
    """One plain torch training step of a new tagger on the fixed ``batch`` (a closure)."""
    from hepscale.models.tagger import ParticleTransformer
    from hepscale.train.optim import build_optimizer

    x, mask, p4, y = batch
    p4_in = p4 if model_cfg.pairwise else None
    torch.manual_seed(cfg.seed)
    model = ParticleTransformer(model_cfg).to(device)
    o = cfg.optim
    opt = build_optimizer(model.named_parameters(), name=o.name, lr=o.lr, betas=tuple(o.betas),
                          weight_decay=o.weight_decay, eps=o.eps, lookahead_k=o.lookahead_k,
                          lookahead_alpha=o.lookahead_alpha)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()

    def step() -> None:
        with ctx:
            logits = model(x, mask, p4_in)
        loss = F.cross_entropy(logits.float(), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def reference_train(cfg: Any, model_cfg: Any, batch: tuple[torch.Tensor, ...], *, steps: int, warmup: int,
                    device: torch.device) -> float:
    """Plain torch training steps of the tagger on one fixed batch; jets per second."""
    step = reference_step(cfg, model_cfg, batch, device)
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * len(batch[3]) / (time.perf_counter() - t0)


def interleaved_steps(cfg: Any, model_cfg: Any, batch: tuple[torch.Tensor, ...], out: Path, *, rounds: int,
                      device: torch.device) -> dict[str, Any]:
    """The trainer's step function (:func:`hepscale.train.loop.train_step` of a run set up as
    :func:`hepscale.train.train` sets it up: sampling, batch building, lr schedule, loss
    bookkeeping, clipping, optimizer) against the reference step, alternating single steps
    ``rounds`` times; jets per second from the median step times."""
    from hepscale.runs.folder import RunFolder
    from hepscale.train.distributed import setup_runtime
    from hepscale.train.loop import setup, task_for, train_step

    task = task_for(cfg)
    rt = setup_runtime(device=cfg.device, dtype=cfg.dtype)
    run, state = setup(cfg, RunFolder(out), task, rt, task.load(rt), resume=False)
    ref = reference_step(cfg, model_cfg, batch, device)
    steps = {"framework": lambda: train_step(run, state), "reference": ref}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(5):
        for f in steps.values():
            f()
    for _ in range(rounds):
        for name, f in steps.items():
            _sync(device)
            t0 = time.perf_counter()
            f()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    b = cfg.data.batch_size
    fw, rf = b / statistics.median(times["framework"]), b / statistics.median(times["reference"])
    return {"rounds": rounds, "framework_jets_per_s": fw, "reference_jets_per_s": rf, "ratio": fw / rf,
            "ratio_of_means": statistics.fmean(times["reference"]) / statistics.fmean(times["framework"])}


def framework_train(cfg: Any, out: Path, *, warmup: int) -> float:
    """:func:`hepscale.train.train` into ``out``; jets per second over the windows after step ``warmup``."""
    from hepscale.train import train

    assert train(cfg, out, progress=False) == 0
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["step"] == warmup, lines[0]
    timed = lines[1:]  # windows of the timed steps only: the first line closes the warmup
    jets = [b["tokens"] - a["tokens"] for a, b in zip(lines, timed)]
    seconds = sum(n / line["tokens_per_s"] for n, line in zip(jets, timed))
    return sum(jets) / seconds


# ---------------------------------------------------------------------------- scoring
def reference_score(model: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor, p4: torch.Tensor | None, *,
                    batch: int, device: torch.device) -> float:
    """Plain ``torch.no_grad`` forward passes of ``model`` over prebuilt tensors; jets per second."""
    n = len(mask)
    with torch.no_grad():
        model(x[:batch], mask[:batch], None if p4 is None else p4[:batch])  # warm
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            model(x[i:i + batch], mask[i:i + batch], None if p4 is None else p4[i:i + batch])
        _sync(device)
    return n / (time.perf_counter() - t0)


def framework_score(run_dir: Path, jets: Path, out: Path, *, n_jets: int, batch: int, device: str) -> float:
    """``hepscale score`` (its library function, end to end) of the ``n_jets`` jets of ``jets``; jets per second."""
    from hepscale.tasks.tagging.score import score_jets

    t0 = time.perf_counter()
    score_jets(run_dir, jets, out, batch=batch, device=device, progress=False)
    return n_jets / (time.perf_counter() - t0)


def score_stages(run_dir: Path, jets_path: Path, *, batch: int, device: str) -> dict[str, float]:
    """Seconds of each stage of the scoring path, run one by one as :func:`score_table` runs them."""
    import pandas as pd

    from hepscale.jets.dataset import read_jets
    from hepscale.tasks.tagging.features import build_inputs
    from hepscale.tasks.tagging.score import load_tagger, score_inputs

    t = [time.perf_counter()]
    model, cfg, ckpt = load_tagger(run_dir, device=device)
    t.append(time.perf_counter())
    jets = read_jets(jets_path)
    t.append(time.perf_counter())
    inputs = build_inputs(jets, cfg.data.features, cfg.data.max_particles, source=str(jets_path))
    t.append(time.perf_counter())
    prob = score_inputs(model, inputs, batch=batch, device=device, progress=False)
    t.append(time.perf_counter())
    table = pd.DataFrame({name: prob[:, i] for i, name in enumerate(ckpt["classes"])})
    table["label"] = np.asarray(jets["label"], dtype=np.int64)
    with tempfile.TemporaryDirectory() as tmp:
        table.to_parquet(Path(tmp) / "s.parquet", index=False)
    t.append(time.perf_counter())
    names = ("load_checkpoint_s", "read_parquet_s", "build_features_s", "model_s", "table_and_write_s")
    return {k: b - a for k, a, b in zip(names, t, t[1:])}


# ---------------------------------------------------------------------------- main
def _compare(ours: list[float], base: list[float]) -> dict[str, Any]:
    """Rates of both per run, their medians and best runs, and the two ratios."""
    o_med, b_med = statistics.median(ours), statistics.median(base)
    return {"framework_jets_per_s": ours, "reference_jets_per_s": base, "framework_median": o_med,
            "reference_median": b_med, "ratio": o_med / b_med, "framework_best": max(ours),
            "reference_best": max(base), "ratio_best": max(ours) / max(base)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="Pico", help="tagger size of configs/taggers.yaml")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (jets)")
    parser.add_argument("--features", default="kin", choices=("kin", "kinpid"))
    parser.add_argument("--max-particles", type=int, default=128, help="padded particles per jet, P")
    parser.add_argument("--pairwise", action="store_true", help="pairwise interaction features (ParT)")
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=40, help="untimed training steps first (>= 1)")
    parser.add_argument("--repeats", type=int, default=3, help="framework training runs (between reference runs)")
    parser.add_argument("--interleave", type=int, default=100,
                        help="rounds of alternating single steps, trainer's step function vs reference (0: skip)")
    parser.add_argument("--score-repeats", type=int, default=5, help="scoring repeats (alternating)")
    parser.add_argument("--jets", type=int, default=4000, help="synthetic jets (half QCD, half Tbqq)")
    parser.add_argument("--score-batch", type=int, default=1024, help="jets per forward pass when scoring "
                        "(hepscale score's default)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (both loops)")
    parser.add_argument("--output", "--json", dest="output", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.getLogger("hepscale").setLevel(logging.ERROR)  # the tiny runs' metric warnings are not the point here
    from hepscale.jets.dataset import read_jets
    from hepscale.models.tagger_sizes import param_counts
    from hepscale.tasks.tagging.data import prepare_tagging_data
    from hepscale.tasks.tagging.features import FEATURE_SETS, build_inputs
    from hepscale.tasks.tagging.score import load_tagger, score_inputs
    from hepscale.tasks.tagging.trainer import split_tensors, tagger_model_config

    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    dev = torch.device("cuda" if use_cuda else "cpu")
    if dev.type == "cuda":
        from hepscale.train.distributed import set_tf32

        set_tf32()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        jets_path = make_jets(tmp / "jets.parquet", args.jets // 2)
        data = prepare_tagging_data(jets_path, tmp / "tagging", classes=("QCD", "Tbqq"), seed=1)
        cfg = run_config(data, args, dev.type)
        model_cfg = tagger_model_config(cfg, n_features=len(FEATURE_SETS[args.features]), n_classes=2)
        train_split = split_tensors(data, "train", features=args.features, max_particles=args.max_particles)
        batch = train_split.batch(np.arange(args.batch_size), dev)
        fill = float(train_split.mask.float().mean())

        fw, ref = [], []
        ref.append(reference_train(cfg, model_cfg, batch, steps=args.steps, warmup=args.warmup, device=dev))
        for r in range(args.repeats):  # reference, framework, reference, ...: each run between two references
            fw.append(framework_train(cfg, tmp / f"run{r}", warmup=args.warmup))
            ref.append(reference_train(cfg, model_cfg, batch, steps=args.steps, warmup=args.warmup, device=dev))
            print(f"train repeat {r}: hepscale {fw[-1]:.0f} jets/s, reference before/after {ref[-2]:.0f}/"
                  f"{ref[-1]:.0f} jets/s", file=sys.stderr)

        steps = None
        if args.interleave > 0:
            steps = interleaved_steps(cfg, model_cfg, batch, tmp / "steps", rounds=args.interleave, device=dev)
            print(f"single steps, {args.interleave} alternating rounds: trainer {steps['framework_jets_per_s']:.0f} "
                  f"jets/s, reference {steps['reference_jets_per_s']:.0f} jets/s", file=sys.stderr)

        run_dir = tmp / f"run{args.repeats - 1}"
        model, _, _ = load_tagger(run_dir, device=dev)
        inputs = build_inputs(read_jets(jets_path), args.features, args.max_particles)
        n_score = len(inputs.mask)
        sx, smask = torch.from_numpy(inputs.x).to(dev), torch.from_numpy(inputs.mask).to(dev)
        sp4 = torch.from_numpy(inputs.p4).to(dev) if args.pairwise else None
        framework_score(run_dir, jets_path, tmp / "warm.parquet", n_jets=n_score, batch=args.score_batch,
                        device=dev.type)  # imports and first calls
        sfw, sref, smodel, stages = [], [], [], []
        for r in range(args.score_repeats):
            sref.append(reference_score(model, sx, smask, sp4, batch=args.score_batch, device=dev))
            sfw.append(framework_score(run_dir, jets_path, tmp / f"scores{r}.parquet", n_jets=n_score,
                                       batch=args.score_batch, device=dev.type))
            t0 = time.perf_counter()
            score_inputs(model, inputs, batch=args.score_batch, device=dev, progress=False)
            smodel.append(n_score / (time.perf_counter() - t0))
            stages.append(score_stages(run_dir, jets_path, batch=args.score_batch, device=dev.type))
            print(f"score repeat {r}: hepscale score {sfw[-1]:.0f} jets/s, its model stage {smodel[-1]:.0f} jets/s, "
                  f"reference {sref[-1]:.0f} jets/s", file=sys.stderr)

    adjacent = [f / math.sqrt(a * b) for f, a, b in zip(fw, ref, ref[1:])]  # against the two references around it
    stage_med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    n_ne, n_tot = param_counts(model_cfg)
    result: dict[str, Any] = {
        "size": args.size, "n_params_non_embedding": n_ne, "n_params_total": n_tot, "features": args.features,
        "max_particles": args.max_particles, "pairwise": args.pairwise, "mean_fill": fill,
        "batch_size": args.batch_size, "device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "steps": args.steps, "warmup": args.warmup, "repeats": args.repeats,
        "train": {**_compare(fw, ref), "ratios_adjacent": adjacent,
                  "ratio_adjacent_median": statistics.median(adjacent), "interleaved_steps": steps},
        "score": {
            "jets": n_score, "batch": args.score_batch, "repeats": args.score_repeats, **_compare(sfw, sref),
            "model_stage": _compare(smodel, sref),
            "stages_s_median": stage_med,
            "features_jets_per_s": n_score / stage_med["build_features_s"],
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
