from __future__ import annotations

import sys
from pathlib import Path

import htcondor2
import pytest

from hepscale.condor import (
    CHECKPOINT_EXIT_CODE,
    CondorError,
    Job,
    SiteProfile,
    condor_arguments,
    condor_literal,
    dag_submit_description,
    dask_cluster,
    gpu_memory_mb,
    load_site,
    submit_dag,
    submit_description,
    validate_submit,
    wrapper_path,
    write_dag,
    write_queue_file,
)
from hepscale.config import ConfigError
from hepscale.errors import EXIT_CHECKPOINT

pytestmark = pytest.mark.condor
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture()
def site():
    return load_site(ROOT / "configs" / "sites" / "generic-gpu.yaml")


def test_site_by_name_from_the_working_directory_then_the_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here: the packaged profile
    assert load_site("generic-gpu") == load_site(ROOT / "configs" / "sites" / "generic-gpu.yaml")
    (tmp_path / "configs" / "sites").mkdir(parents=True)
    (tmp_path / "configs" / "sites" / "generic-gpu.yaml").write_text("name: mine\n")
    assert load_site("generic-gpu").name == "mine"  # the working directory's profile comes first
    assert load_site(None) == SiteProfile()


def test_wrapper_is_the_packaged_job_script():
    path = wrapper_path()
    assert path.name == "hepscale_job.sh" and path.is_file()
    assert path.read_bytes() == (ROOT / "condor" / "hepscale_job.sh").read_bytes()
    assert CHECKPOINT_EXIT_CODE == EXIT_CHECKPOINT


@pytest.mark.parametrize(("module", "call"), [
    ("htcondor2", lambda folder: validate_submit("executable = x\nqueue")),
    ("htcondor2", lambda folder: submit_dag(folder / "x.dag")),
    ("htcondor2.dags", lambda folder: write_dag(folder, [])),
    ("dask_jobqueue", lambda folder: dask_cluster(SiteProfile())),
])
def test_missing_optional_module_says_what_to_install(tmp_path, monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'hepscale\[condor\]'") as info:
        call(tmp_path)
    assert info.value.name == module and module in str(info.value)


@pytest.mark.parametrize(("args", "expected"), [
    (["train", "run.yaml"], '"train run.yaml"'),
    (["train", "my run.yaml", "optim.lr=3e-4"], "\"train 'my run.yaml' optim.lr=3e-4\""),
    (["it's", ""], "\"'it''s' ''\""),
])
def test_argument_quoting_is_what_htcondor_reads(args, expected):
    quoted = condor_arguments(args)
    assert quoted == expected
    sub = htcondor2.Submit({"executable": "x", "arguments": quoted})
    assert sub["arguments"] == expected
    with pytest.raises(CondorError, match="double quote"):
        condor_arguments(['say "hi"'])


def test_queue_from_item_list(tmp_path, site):
    jobs = [Job("run-a", ("train", "a b.yaml", "--resume")), Job("run-b", ("train", "b.yaml"))]
    desc = submit_description("train", site, training=True)
    sub_path = write_queue_file(tmp_path, "train", desc, jobs)
    text = sub_path.read_text()
    assert "queue job_id, args from train.items" in text
    assert f"checkpoint_exit_code = {CHECKPOINT_EXIT_CODE}" in text and "request_gpus = 1" in text
    rows = validate_submit(text, items=(tmp_path / "train.items").read_text())
    assert [r["job_id"] for r in rows] == ["run-a", "run-b"]
    assert rows[0]["args"] == "\"train 'a b.yaml' --resume\""


def test_dag_of_stages(tmp_path, site):
    site.container_image = "docker://example/hepscale:1"
    site.accounting_group = "group_physics.user"
    runs = [Job(f"r{i}", ("train", f"r{i}/config.yaml", "--output", f"r{i}", "--resume")) for i in range(3)]
    evals = [Job(f"r{i}", ("evaluate", f"r{i}")) for i in range(3)]
    stages = [
        ("prepare", submit_description("prepare", site), [Job("prepare", ("study", "prepare", "s.yaml"))], "all"),
        ("train", submit_description("train", site, training=True), runs, "all"),
        ("evaluate", submit_description("evaluate", site), evals, "one-to-one"),
        ("collect", submit_description("collect", site), [Job("collect", ("study", "collect", "."))], "all"),
    ]
    dag_file = write_dag(tmp_path, stages, max_jobs={"train": 2})
    text = dag_file.read_text()
    assert "PARENT prepare:0 CHILD train:0 train:1 train:2" in text
    assert "PARENT train:1 CHILD evaluate:1" in text  # one-to-one
    assert "PARENT evaluate:0 evaluate:1 evaluate:2 CHILD collect:0" in text
    assert "RETRY train:0 3 UNLESS-EXIT 2" in text and "CATEGORY train:0 train" in text and "MAXJOBS train 2" in text
    assert 'VARS train:1 attempt="$(RETRY)"' in text
    assert 'VARS train:2 job_id="r2" args="\\"train r2/config.yaml --output r2 --resume\\""' in text
    train_sub = (tmp_path / "train.sub").read_text()
    validate_submit(train_sub)
    for line in ("container_image = docker://example/hepscale:1", "accounting_group = group_physics.user",
                 "checkpoint_exit_code = 85", "transfer_checkpoint_files = $(job_id)", "request_memory = 32GB",
                 "universe = container", "when_to_transfer_output = ON_EXIT", "preserve_relative_paths = True",
                 "output = logs/train-$(job_id).$(ClusterId).out"):
        assert line in train_sub
    evaluate_sub = (tmp_path / "evaluate.sub").read_text()
    assert "checkpoint_exit_code" not in evaluate_sub and "max_retries" not in evaluate_sub
    assert "when_to_transfer_output = ON_SUCCESS" in evaluate_sub and "success_exit_code = 0" in evaluate_sub
    assert (tmp_path / "hepscale_job.sh").is_file()
    with pytest.raises(CondorError, match="one-to-one with 3"):
        write_dag(tmp_path / "bad", [stages[1], ("evaluate", stages[2][1], evals[:2], "one-to-one")])


def test_bad_descriptions_and_profiles(tmp_path):
    with pytest.raises(CondorError, match="cannot parse the queue statement"):
        validate_submit("executable = x\nqueue 3 in (a b")
    with pytest.raises(CondorError, match="request_memory = 'lots'"):
        validate_submit("executable = x\nrequest_memory = lots\nqueue")
    with pytest.raises(CondorError, match="site profile 'nosuchsite' not found"):
        load_site("nosuchsite")
    with pytest.raises(ValueError, match="job id"):
        Job("a/b", ("x",))


def test_submit_without_a_schedd_is_a_clear_error(tmp_path, site):
    dag = write_dag(tmp_path, [("collect", submit_description("collect", site), [Job("c", ("study", "collect"))], "all")])
    with pytest.raises(CondorError, match="needs an HTCondor access point"):
        submit_dag(dag)


def test_dask_jobqueue_cluster_from_site(site):
    site.container_image = "docker://example/hepscale:1"
    cluster = dask_cluster(site)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "MY.DaskWorkerMemory = 4000000000" in script and "MY.DaskWorkerCores = 1" in script
    assert "container_image = docker://example/hepscale:1" in script and "universe = container" in script
    assert "should_transfer_files = YES" in script and "LogDirectory" not in script
    assert "--local-directory $_CONDOR_SCRATCH_DIR" in script and "NUMBA_CACHE_DIR=" in script
    htcondor2.Submit(script.split("\n", 1)[1])  # the bindings read the generated description


def test_dask_workers_get_a_shipped_environment(tmp_path, site):
    tarball = tmp_path / "env.tar.gz"
    tarball.write_bytes(b"packed")
    site.software.tarball = str(tarball)
    site.software.setup = "source /cvmfs/sft.cern.ch/lcg/views/setup.sh"
    cluster = dask_cluster(site)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert f"transfer_input_files = {tarball}" in script
    assert "tar -xzf env.tar.gz" in script and "source /cvmfs/sft.cern.ch/lcg/views/setup.sh" in script
    assert "python3 -m distributed.cli.dask_worker" in script
    site.software.tarball = str(tmp_path / "missing.tar.gz")
    with pytest.raises(CondorError, match="missing.tar.gz does not exist"):
        dask_cluster(site)


@pytest.mark.parametrize("name", ["generic", "generic-gpu", "cms-connect", "lpc", "lxbatch"])
def test_shipped_site_profiles(name):
    site = load_site(name)
    desc = submit_description("train", site, training=True, gpu_memory="8192", batch_name="study")
    text = str(htcondor2.Submit(desc))
    validate_submit(text)
    assert "checkpoint_exit_code = 85" in text and "HEPSCALE_CHECKPOINT_EXIT_MINUTES='60'" in text
    assert "batch_name = study" in text
    assert site.has_image == (name not in ("generic", "generic-gpu"))
    assert ("gpus_minimum_memory = 8192" in text) == (site.train.request_gpus > 0)
    extra = {"cms-connect": "+DESIRED_Sites", "lpc": "+ApptainerImage", "lxbatch": "+JobFlavour"}.get(name)
    assert extra is None or extra in desc


@pytest.mark.parametrize("text, message", [
    ("train:\n  request_memory: lots\n", "request_memory must be a size"),
    ("gpus: 4\n", "unknown key.*'gpus'.*valid keys are: accounting_group"),
    ("software:\n  pyhton: python3\n", r"{bad}.software: unknown key\(s\) 'pyhton'"),
    ("software:\n  wheel: a.whl\n  tarball: b.tar.gz\n", "one of software.wheel and software.tarball"),
    ("checkpoint_exit_minutes: 0\n", "checkpoint_exit_minutes must be > 0"),
])
def test_site_profile_errors_name_the_key_and_file(tmp_path, text, message):
    bad = tmp_path / "site.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("{bad}", str(bad))):
        load_site(bad)


def test_software_and_threads_reach_the_job_environment(site):
    site.software.wheel = "/dist/hepscale-1.0-py3-none-any.whl"
    site.software.setup = "source /cvmfs/x/setup.sh $HOME"
    desc = submit_description("sample", site, transfer_input=["runs/$(job_id)"], outputs=["runs/$(job_id)/s"],
                              gpus=1)
    sub = htcondor2.Submit({**desc, "job_id": "r1", "attempt": "2"})
    env = sub.expand("environment")
    for item in ("HEPSCALE_WHEEL='software/hepscale-1.0-py3-none-any.whl'", "HEPSCALE_CPUS='2'",
                 "HEPSCALE_SETUP='source /cvmfs/x/setup.sh $HOME'", "HEPSCALE_ATTEMPT='2'"):
        assert item in env
    assert sub.expand("transfer_input_files") == "software/hepscale-1.0-py3-none-any.whl, runs/r1"
    assert desc["request_gpus"] == "1" and desc["gpus_minimum_capability"] == "7"


def test_gpu_memory_grows_with_the_model():
    from hepscale.train.config import load_run_config

    base = ROOT / "configs" / "train" / "generation_gpu.yaml"
    small, large = (load_run_config(base, [f"model.size={m}"]) for m in ("Pico", "XXL"))
    assert gpu_memory_mb(small, minimum=4000) == 4000  # the site's least
    assert gpu_memory_mb(large) > gpu_memory_mb(small) >= 1024
    assert gpu_memory_mb(large) % 1024 == 0


def test_dag_submission_runs_from_the_dag_folder(tmp_path, monkeypatch, site):
    dag = write_dag(tmp_path / "study", [("collect", submit_description("collect", site),
                                          [Job("c", ("study", "collect", "."))], "all")])
    monkeypatch.chdir(tmp_path)  # anywhere but the study folder
    sub = dag_submit_description(dag.relative_to(tmp_path), batch_name="tiny", dagman="/bin/true")
    assert sub["initialdir"] == str(dag.parent)
    args = sub["arguments"]
    assert f"-Dag {dag}" in args and "-UseDagDir" in args and "-batch-name" not in args
    assert (dag.parent / "study.dag.condor.sub").is_file()
    assert 'My.JobBatchName = "tiny"' in str(sub)
    with pytest.raises(CondorError, match="does not exist"):
        dag_submit_description(tmp_path / "nosuch.dag")


@pytest.mark.parametrize("args", [
    ["fit", "--cms-label", "Work $(ProcId)"],
    ["train", "/data/$(Cluster)/run.yaml", "$ENV(HOME)", "cost: 5$"],
])
def test_dollar_in_arguments_reaches_the_job_unchanged(args):
    """HTCondor expands $(...) in submit values and item data: written as $(DOLLAR), it is not."""
    quoted = condor_arguments(args)
    plain = '"' + " ".join(f"'{a}'" if " " in a else a for a in args) + '"'
    for sub in (htcondor2.Submit({"executable": "x", "arguments": quoted, "ProcId": "0", "Cluster": "7"}),
                htcondor2.Submit({"executable": "x", "arguments": "$(args)", "args": quoted, "ProcId": "0"})):
        assert sub.expand("arguments") == plain
    assert htcondor2.Submit({"executable": "x", "arguments": plain, "ProcId": "0"}).expand("arguments") != plain


def test_dollar_comma_and_absolute_paths(tmp_path, site):
    path = "inputs/d$(Cluster)-jets.parquet"
    literal = condor_literal(path, what="input file")
    desc = submit_description("prepare", site, transfer_input=[literal])
    sub = htcondor2.Submit({**desc, "Cluster": "7"})
    assert sub.expand("transfer_input_files") == path
    with pytest.raises(CondorError, match="'/data/x.root' is absolute"):
        submit_description("prepare", site, transfer_input=["/data/x.root"])
    for bad in ("/data/a$$(Name)/x.root", "/data/$(DOLLAR)/x.root"):
        with pytest.raises(CondorError, match="input file .* cannot be written"):
            condor_literal(bad, what="input file")
    with pytest.raises(CondorError, match=r"'data/a,b/x.root' holds a comma"):
        submit_description("prepare", site, transfer_input=["data/a,b/x.root"])


def test_checkpoint_exit_interval_of_the_trainer(tmp_path, monkeypatch, capsys):
    from hepscale.train.cli import CHECKPOINT_EXIT_ENV
    from hepscale.train.cli import main as train_main

    monkeypatch.setenv(CHECKPOINT_EXIT_ENV, "soon")
    with pytest.raises(SystemExit) as info:
        train_main(["cfg.yaml", "--output", str(tmp_path / "run")])
    assert info.value.code == 2 and f"{CHECKPOINT_EXIT_ENV}: expected a number of minutes" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        train_main(["cfg.yaml", "--output", str(tmp_path / "run"), "--checkpoint-exit-minutes", "0"])
    assert info.value.code == 2 and "minutes > 0" in capsys.readouterr().err
