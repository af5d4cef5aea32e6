"""The pool harness (tests/_condor_pool.py) on small hand-written DAGs of shell-script jobs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _condor_pool import PoolError, condor_args, parse_dag, run_dag

from hepscale.condor import condor_arguments

pytestmark = pytest.mark.condor

BASE = """\
universe = vanilla
executable = job.sh
arguments = $(args)
output = logs/$(job_id).$(ClusterId).out
error = logs/$(job_id).$(ClusterId).err
log = logs/pool.log
should_transfer_files = YES
preserve_relative_paths = True
request_cpus = 3
"""

# the job: runs its arguments as a shell script in the scratch folder
JOB = """#!/bin/sh
set -e
eval "$1"
"""


def sh(script: str) -> str:
    """A shell script as the one argument of a job, written as a DAG VARS value."""
    return condor_arguments([script]).replace("\\", "\\\\").replace('"', '\\"')


def _study(tmp_path: Path, dag: str, subs: dict[str, str]) -> Path:
    folder = tmp_path / "dag"
    (folder / "logs").mkdir(parents=True)
    (folder / "job.sh").write_text(JOB)
    for name, extra in subs.items():
        (folder / f"{name}.sub").write_text(BASE + textwrap.dedent(extra))
    (folder / "x.dag").write_text(textwrap.dedent(dag))
    return folder / "x.dag"


def test_arguments_and_dag_parsing(tmp_path: Path) -> None:
    assert condor_args("\"train 'my run.yaml' 'it''s' ''\"") == ["train", "my run.yaml", "it's", ""]
    dag = _study(tmp_path, f"""\
        JOB a a.sub
        VARS a job_id="a" args="{sh('echo hi')}"
        JOB b a.sub DIR sub
        RETRY b 3 UNLESS-EXIT 2
        CATEGORY b train
        PARENT a CHILD b
        FINAL f a.sub
        """, {"a": ""})
    nodes = parse_dag(dag)
    assert nodes["a"].vars == {"job_id": "a", "args": "\"'echo hi'\""}
    assert (nodes["b"].retries, nodes["b"].unless_exit, nodes["b"].parents) == (3, 2, {"a"})
    assert nodes["b"].folder == dag.parent / "sub" and nodes["f"].final
    (dag.parent / "y.dag").write_text("JOBS a a.sub\n")
    with pytest.raises(PoolError, match="unknown DAG keyword 'JOBS'"):
        parse_dag(dag.parent / "y.dag")


def test_scratch_holds_only_the_inputs_and_outputs_come_back_on_success(tmp_path: Path) -> None:
    dag = _study(tmp_path, f"""\
        JOB a a.sub
        VARS a job_id="a" args="{sh('x=$(ls -A | sort); echo $x > seen.txt; env > env.txt; mkdir -p out; echo $OMP_NUM_THREADS > out/n')}"
        JOB b b.sub
        VARS b job_id="b" args="{sh('echo partial > out.txt; exit 1')}"
        """, {"a": """\
        transfer_input_files = in/x.txt, in/d
        transfer_output_files = seen.txt, env.txt, out
        when_to_transfer_output = ON_SUCCESS
        environment = "FOO='a b' BAR=2"
        """, "b": """\
        transfer_output_files = out.txt
        when_to_transfer_output = ON_SUCCESS
        """})
    folder = dag.parent
    (folder / "in" / "d").mkdir(parents=True)
    (folder / "in" / "x.txt").write_text("x")
    (folder / "in" / "d" / "y.txt").write_text("y")
    (folder / "unrelated.txt").write_text("not transferred")
    result = run_dag(dag, tmp_path / "pool")
    assert result.nodes["a"].status == "done" and result.nodes["b"].status == "failed"
    assert (folder / "seen.txt").read_text().split() == ["in", "job.sh"]  # nothing else of the folder
    env = dict(line.split("=", 1) for line in (folder / "env.txt").read_text().splitlines() if "=" in line)
    assert env["FOO"] == "a b" and env["BAR"] == "2" and env["_CONDOR_SCRATCH_DIR"] != str(folder)
    assert (folder / "out" / "n").read_text().strip() == "3"  # OMP_NUM_THREADS = request_cpus
    assert not (folder / "out.txt").exists()  # failed: nothing comes back with ON_SUCCESS
    cluster = result.nodes["a"].jobs[0].cluster
    assert (folder / "logs" / f"a.{cluster}.out").is_file()


def test_retry_unless_exit_and_new_clusters(tmp_path: Path) -> None:
    dag = _study(tmp_path, f"""\
        JOB flaky a.sub
        VARS flaky job_id="flaky" args="{sh('n=$(cat tries 2>/dev/null || echo 0); echo $((n+1)) > tries; test $n -ge 2')}"
        RETRY flaky 3 UNLESS-EXIT 2
        JOB bad a.sub
        VARS bad job_id="bad" args="{sh('exit 2')}"
        RETRY bad 3 UNLESS-EXIT 2
        JOB after a.sub
        VARS after job_id="after" args="{sh('true')}"
        PARENT bad CHILD after
        """, {"a": """\
        transfer_input_files = tries
        transfer_output_files = tries
        when_to_transfer_output = ON_EXIT
        """})
    (dag.parent / "tries").write_text("0\n")
    result = run_dag(dag, tmp_path / "pool")
    flaky = result.nodes["flaky"]
    assert flaky.status == "done" and len(flaky.jobs) == 3  # ON_EXIT: the count comes back after failures
    assert len({j.cluster for j in flaky.jobs}) == 3
    assert result.nodes["bad"].status == "failed" and len(result.nodes["bad"].jobs) == 1  # exit 2: not retried
    assert result.nodes["after"].status == "not run"
    assert not result.ok


def test_missing_input_or_output_holds_the_job(tmp_path: Path) -> None:
    dag = _study(tmp_path, f"""\
        JOB a a.sub
        VARS a job_id="a" args="{sh('true')}"
        RETRY a 2
        JOB b b.sub
        VARS b job_id="b" args="{sh('true')}"
        """, {"a": "transfer_input_files = nosuch.txt\n",
              "b": "transfer_output_files = never.txt\nwhen_to_transfer_output = ON_EXIT\n"})
    result = run_dag(dag, tmp_path / "pool")
    assert result.nodes["a"].status == "held" and len(result.nodes["a"].jobs) == 1
    assert "nosuch.txt" in (result.nodes["a"].jobs[0].held or "")
    assert result.nodes["b"].status == "held" and "never.txt" in (result.nodes["b"].jobs[0].held or "")


@pytest.mark.parametrize(("extra", "message"), [
    ("transfer_input_file = x\n", "'transfer_input_file' is not an HTCondor submit command"),
    ("transfer_input_files = /etc/hostname\n", "absolute path"),
    ("transfer_output_files = root://eos/x\n", "absolute path or URL"),
    ("when_to_transfer_output = ON_EXIT_OR_EVICT\n", "not modelled"),
])
def test_refused_descriptions(tmp_path: Path, extra: str, message: str) -> None:
    dag = _study(tmp_path, f'JOB a a.sub\nVARS a job_id="a" args="{sh("true")}"\n', {"a": extra})
    with pytest.raises(PoolError, match=message):
        run_dag(dag, tmp_path / "pool")


CHECKPOINTING = """\
# counts to 6, one step per second, state in run/state; exits 85 after every second step
mkdir -p run; n=$(cat run/state 2>/dev/null || echo 0); echo "start at $n" >&2
trap 'echo $n > run/state; echo "checkpoint $n on SIGTERM" >&2; exit 85' TERM
while [ $n -lt 6 ]; do
  sleep 0.3; n=$((n+1)); echo "step $n" >&2
  if [ $((n % 2)) -eq 0 ] && [ $n -lt 6 ]; then echo $n > run/state; exit 85; fi
done
echo $n > run/state; echo done > run/result
"""


def test_checkpoint_exit_and_eviction_restart_from_the_spool(tmp_path: Path) -> None:
    dag = _study(tmp_path, f"""\
        JOB t a.sub
        VARS t job_id="t" args="{sh('exec sh count.sh')}"
        """, {"a": """\
        transfer_input_files = run, count.sh
        transfer_output_files = run
        transfer_checkpoint_files = run
        checkpoint_exit_code = 85
        when_to_transfer_output = ON_EXIT
        """})
    (dag.parent / "count.sh").write_text(CHECKPOINTING)
    (dag.parent / "run").mkdir()
    evicted = []

    def evict(execution) -> bool:  # the third start (from the spool at 4), once it has made a step
        if not evicted and execution.start == 3 and "step 5" in execution.stderr_text():
            evicted.append(execution.start)
            return True
        return False

    result = run_dag(dag, tmp_path / "pool", evict=evict)
    (job,) = result.nodes["t"].jobs
    assert result.ok, result.events
    starts = [(e.start, e.spooled, e.evicted, e.exit_code) for e in job.executions]
    assert [s[:3] for s in starts] == [(1, False, False), (2, True, False), (3, True, True), (4, True, False)]
    assert starts[2][3] == 85  # the job checkpointed on SIGTERM, but an evicted job's files are lost
    texts = [e.stderr_text() for e in job.executions]
    assert "checkpoint 5 on SIGTERM" in texts[2]
    assert "start at 4" in texts[3]  # from the last spooled checkpoint, not from the evicted one's 5
    assert (dag.parent / "run" / "result").read_text() == "done\n"
    assert (dag.parent / "run" / "state").read_text() == "6\n"
