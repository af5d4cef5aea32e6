from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import htcondor2
import pytest
import yaml
from _study_setup import ROOT, tiny_dict, write_study

from hepscale.condor import condor_arguments, validate_submit
from hepscale.study import data_paths, expand_runs, job_commands, load_study, main
from hepscale.train.config import load_run_config, run_id


def test_train_commands_reproduce_the_run(tmp_path: Path, jets_file: Path) -> None:
    study = load_study(write_study(tmp_path / "s.yaml", tiny_dict(tmp_path / "out", jets_file)))
    runs = expand_runs(study)
    commands = job_commands(study, runs)
    for (job_id, args), run in zip(commands["train"], runs):
        assert args[:2] == ["train", "train.yaml"] and args[-3:] == ["--output", f"runs/{job_id}", "--resume"]
        assert run_id(load_run_config(study.train.config, args[2:-3])) == job_id == run.run_id
    assert [j for j, _ in commands["evaluate"]] == [r.run_id for r in runs]
    assert commands["finish"] == [("finish", ["study", "finish", "."])]


def test_condor_dag_runs_the_local_commands(tmp_path: Path, jets_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = tiny_dict(tmp_path / "out", jets_file)
    data["grid"]["seeds"] = [1, 2]  # 4 runs; --test keeps two
    path = write_study(tmp_path / "s.yaml", data)
    site = tmp_path / "site.yaml"
    site_data = yaml.safe_load((ROOT / "configs/sites/generic-gpu.yaml").read_text())
    site_data.update(container_image="docker://example/hepscale:1", accounting_group="group_physics.user")
    site.write_text(yaml.safe_dump(site_data))
    assert main(["condor", str(path), "--site", str(site), "--test"]) == 0
    out_dir = tmp_path / "out"
    dag = (out_dir / "study.dag").read_text()
    study = load_study(path)
    runs = expand_runs(study)
    assert len(runs) == 4
    commands = job_commands(study, runs[:2])
    vars_lines = re.findall(r'^VARS (\w+):\d+ job_id="([^"]+)" args="(.*)"$', dag, flags=re.M)
    by_kind: dict[str, list[tuple[str, str]]] = {}
    for kind, job_id, args in vars_lines:
        by_kind.setdefault(kind, []).append((job_id, args))
    assert set(by_kind) == {"prepare", "train", "sample", "evaluate"}
    for kind, items in by_kind.items():
        device = ["--device", "cuda"] if kind == "sample" else []  # the profile's GPUs sample
        expected = [(j, condor_arguments([*a, *device]).replace('"', '\\"')) for j, a in commands[kind]]
        assert items == expected, kind
    assert "PARENT prepare:0 CHILD train:0 train:1" in dag and "PARENT train:1 CHILD sample:1" in dag
    assert "RETRY train:0 3" in dag
    train_sub = (out_dir / "train.sub").read_text()
    for line in ("checkpoint_exit_code = 85", "request_gpus = 1", "request_memory = 32GB",
                 "transfer_checkpoint_files = runs/$(job_id)", "preserve_relative_paths = True",
                 "container_image = docker://example/hepscale:1", "accounting_group = group_physics.user",
                 f"transfer_input_files = train.yaml, {data_paths(study)['tokens']}"):
        assert line in train_sub
    # collect and fit: the FINAL node, a job like the others whose PRE script lists the finished runs' results
    (finish_vars,) = re.findall(r'^VARS finish (.*)$', dag, flags=re.M)
    finish_args = condor_arguments(["study", "finish", ".", "--fit-failures-ok"]).replace('"', '\\"')
    assert finish_vars == f'job_id="finish" args="{finish_args}" attempt="$(RETRY)"'
    assert "FINAL finish finish.sub" in dag and "JOB collect" not in dag and "JOB fit" not in dag
    assert "SCRIPT PRE finish /bin/sh finish_pre.sh" in dag and "SCRIPT POST finish /bin/sh finish_post.sh $RETURN" in dag
    finish_sub = (out_dir / "finish.sub").read_text()
    assert finish_sub.startswith("include : finish.inputs\n") and "universe = container" in finish_sub
    assert "transfer_input_files = study.yaml, train.yaml, $(finish_inputs)" in finish_sub
    assert (out_dir / "finish.inputs").read_text() == "finish_inputs = plan.json\n"  # nothing has run yet
    evaluate_sub = (out_dir / "evaluate.sub").read_text()
    assert "transfer_output_files = runs/$(job_id)/result.json\n" in evaluate_sub
    assert "universe = container" in evaluate_sub and "checkpoint_exit_code" not in evaluate_sub
    queue = (out_dir / "train.queue.sub").read_text()
    assert "queue job_id, args from train.queue.items" in queue
    rows = validate_submit(queue, items=(out_dir / "train.queue.items").read_text())
    assert [r["job_id"] for r in rows] == [r.run_id for r in runs[:2]]
    assert (out_dir / "hepscale_job.sh").is_file() and (out_dir / "study.yaml").is_file()
    assert len(json.loads((out_dir / "plan.json").read_text())["runs"]) == 4  # the plan keeps every run
    copy = load_study(out_dir / "study.yaml")
    assert copy.output == "." and [r.run_id for r in expand_runs(copy, train_config=out_dir / "train.yaml")] == [
        r.run_id for r in runs]
    assert main(["condor", str(path), "--no-prepare"]) == 0  # data prepared on the access point instead
    dag = (out_dir / "study.dag").read_text()
    assert "prepare" not in dag and dag.count("\nJOB train:") == 4
    capsys.readouterr()
    assert main(["condor", str(path), "--submit"]) == 2  # no schedd here: a clear error
    assert "HTCondor access point" in capsys.readouterr().err


def test_condor_strings_reach_the_jobs_as_written(tmp_path: Path, jets_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A '$(...)' in a fit label or an input path is not expanded by HTCondor; a comma in an input
    path is refused by name; the printed submit hints survive a shell."""
    odd = tmp_path / "data $(Cluster)"
    odd.mkdir()
    jets = odd / "jets.parquet"
    jets.write_bytes(jets_file.read_bytes())
    data = tiny_dict(tmp_path / "my study", jets)
    data["fit"]["fits"] = [{"name": "loss_vs_N", "law": "log", "x": "N", "args": ["--cms-label", "Work $(ProcId)"]}]
    path = write_study(tmp_path / "s.yaml", data)
    assert main(["condor", str(path), "--no-prepare"]) == 0
    out_dir = tmp_path / "my study"
    hint = capsys.readouterr().out.splitlines()
    submit_again = shlex.split(hint[-2])
    assert submit_again[-4:] == ["condor", str(path), "--no-prepare", "--submit"]
    assert shlex.split(hint[-1].split("&&")[0]) == ["cd", str(out_dir)]

    def expanded(kind: str, vars_value: str, macro: str) -> str:
        sub = htcondor2.Submit((out_dir / f"{kind}.sub").read_text())
        sub["args"] = vars_value.replace('\\"', '"')  # DAGMan's VARS, unescaped
        sub["job_id"], sub["ProcId"], sub["Cluster"] = "job", "0", "7"
        return str(sub.expand(macro))

    # the fits run in the FINAL node's job from the folder's study.yaml: their arguments never pass HTCondor
    assert "ProcId" not in (out_dir / "study.dag").read_text()
    (fit,) = job_commands(load_study(out_dir / "study.yaml"), [])["fit"]
    assert fit[1][fit[1].index("--label") + 1] == "Work $(ProcId)"
    assert main(["condor", str(path)]) == 0  # with the prepare node: the jets file is transferred
    assert "inputs/jets-jets.parquet" in expanded("prepare", "", "transfer_input_files").split(", ")
    assert (out_dir / "inputs" / "jets-jets.parquet").resolve() == jets.resolve()
    comma = tmp_path / "a,b.parquet"
    comma.write_bytes(jets_file.read_bytes())
    data["data"]["jets"] = str(comma)
    write_study(path, data)
    capsys.readouterr()
    assert main(["condor", str(path)]) == 2
    assert f"{str(comma.resolve())!r} holds a comma" in capsys.readouterr().err
