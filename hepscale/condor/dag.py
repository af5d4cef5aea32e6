"""DAGMan DAGs of job stages, and their submission (from the DAG's own folder).

:func:`write_dag` writes a DAG of layers (one submit description per job kind, one node per job
with ``VARS``) with ``htcondor2.dags``; every node is retried ``max_retries`` times UNLESS-EXIT 2
(:data:`hepscale.errors.EXIT_BAD_INPUT`: a configuration or data error fails the same way
again), and gets ``attempt = $(RETRY)`` for its logs. A :class:`FinalJob` becomes the DAG's
``FINAL`` node: it runs last, whatever happened to the other nodes, with its PRE and POST
scripts (run by DAGMan on the access point, in the DAG's folder) and, when it has one, a file of
submit commands that its PRE script writes and its submit file includes (``include : FILE``,
read when the node is submitted). :func:`dag_submit_description` is the
DAGMan job's submit description built by the bindings from the DAG's absolute path with
``UseDagDir`` and ``initialdir`` = the DAG's folder, so that node submit files, logs and the
relative paths in them resolve against the study folder whatever the caller's working
directory; :func:`submit_dag` hands it to the local schedd.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hepscale.condor._bindings import CondorError, condor_arguments, dags, htcondor
from hepscale.condor.submit import Job, validate_submit, wrapper_path
from hepscale.errors import EXIT_BAD_INPUT

__all__ = ["RETRY_UNLESS_EXIT", "FinalJob", "dag_submit_description", "submit_dag", "write_dag"]

#: a node that exits with this status is not retried (a configuration or data error)
RETRY_UNLESS_EXIT = EXIT_BAD_INPUT

#: submit commands of a stage's description that are node settings of the DAG, not job commands
_NODE_KEYS = ("max_retries",)


@dataclass(frozen=True)
class FinalJob:
    """The DAG's FINAL node: one job that runs after every other node, whatever happened to them.

    ``pre`` and ``post`` are the commands of its ``SCRIPT PRE`` and ``SCRIPT POST`` (empty: none;
    ``$RETURN`` in ``post`` is the job's exit status); ``include`` a file (relative to the DAG's
    folder) of submit commands that the submit file includes, e.g. a macro its PRE script writes.
    The node is not retried.
    """

    kind: str
    description: Mapping[str, str]
    job: Job
    pre: Sequence[str] = ()
    post: Sequence[str] = ()
    include: str | None = None


def write_dag(
    folder: str | os.PathLike[str],
    stages: Sequence[tuple[Any, ...]],
    *,
    dag_name: str = "study.dag",
    max_jobs: Mapping[str, int] | None = None,
    final: FinalJob | None = None,
) -> Path:
    """Write a DAG of stages, each a layer of jobs sharing one submit description.

    Parameters
    ----------
    stages
        ``(kind, submit commands, jobs, edge[, node vars])`` in order; ``edge`` links the layer
        to the one before: ``"all"`` (every job waits for every job of the previous stage) or
        ``"one-to-one"`` (job i waits for job i; the two stages must have equal lengths).
        Each job becomes a node with ``VARS job_id, args`` (and the job's dict of ``node
        vars``, e.g. its ``gpu_memory``, on a second ``VARS`` line with ``attempt``) and
        ``RETRY n UNLESS-EXIT 2`` from the description's ``max_retries``.
    max_jobs
        DAGMan throttles per job kind (``MAXJOBS`` by category).
    final
        The DAG's FINAL node (see :class:`FinalJob`), with ``VARS job_id, args, attempt``.

    Returns
    -------
    Path
        The DAG file. The node submit descriptions and the wrapper are written beside it.
    """
    htcondor2, d = htcondor(), dags()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    dag = d.DAG()
    previous = None
    previous_len = 0
    extra_lines: list[str] = []
    for kind, desc, jobs, edge, *rest in stages:
        jobs = [j if isinstance(j, Job) else Job(*j) for j in jobs]
        if not jobs:
            raise CondorError(f"stage {kind!r} has no jobs")
        node_vars: Sequence[Mapping[str, str]] = rest[0] if rest else [{} for _ in jobs]
        if len(node_vars) != len(jobs):
            raise CondorError(f"stage {kind!r}: {len(node_vars)} sets of node vars for {len(jobs)} jobs")
        node_desc = {k: v for k, v in desc.items() if k not in _NODE_KEYS}
        validate_submit(str(htcondor2.Submit(node_desc)))
        retries = int(desc.get("max_retries", 0))
        kwargs: dict[str, Any] = {"name": kind, "submit_description": htcondor2.Submit(node_desc),
                                  "vars": [{"job_id": j.id, "args": condor_arguments(j.args)} for j in jobs]}
        if retries:
            kwargs["retries"] = retries
            kwargs["retry_unless_exit"] = RETRY_UNLESS_EXIT
        if max_jobs and kind in max_jobs:
            kwargs["category"] = kind
        if previous is None:
            layer = dag.layer(**kwargs)
        else:
            if edge == "one-to-one":
                if len(jobs) != previous_len:
                    raise CondorError(f"stage {kind!r} has {len(jobs)} jobs, one-to-one with {previous_len}")
                kwargs["edge"] = d.OneToOne()
            elif edge != "all":
                raise CondorError(f"edge must be 'all' or 'one-to-one', got {edge!r}")
            layer = previous.child_layer(**kwargs)
        for i, extra in enumerate(node_vars):
            extra_lines.append(_vars_line(f"{kind}:{i}", {"attempt": "$(RETRY)", **extra}))
        previous, previous_len = layer, len(jobs)
    final_text = None
    if final is not None:
        final_desc = {k: v for k, v in final.description.items() if k not in _NODE_KEYS}
        final_text = str(htcondor2.Submit(final_desc))
        validate_submit(final_text)
        if final.include:  # read when DAGMan submits the node, after the PRE script wrote it
            final_text = f"include : {final.include}\n{final_text}"
        scripts = {key: d.Script(executable=cmd[0], arguments=list(cmd[1:]))
                   for key, cmd in (("pre", final.pre), ("post", final.post)) if cmd}
        dag.final(name=final.kind, submit_description=htcondor2.Submit(final_desc), **scripts)
        extra_lines.append(_vars_line(final.kind, {"job_id": final.job.id, "args": condor_arguments(final.job.args),
                                                   "attempt": "$(RETRY)"}))
    path = Path(d.write_dag(dag, out, dag_file_name=dag_name))
    if final_text is not None:  # the bindings write no submit file for a FINAL node
        (out / f"{final.kind}.sub").write_text(final_text, encoding="utf-8")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("# the attempt ($(RETRY)) and further per-node values of the submit descriptions\n")
        handle.writelines(f"{line}\n" for line in extra_lines)
        if max_jobs:  # DAGMan throttles: MAXJOBS <category> <n>, the nodes carry CATEGORY lines
            handle.writelines(f"MAXJOBS {kind} {int(n)}\n" for kind, n in max_jobs.items())
    shutil.copy2(wrapper_path(), out / wrapper_path().name)
    return path


def _vars_value(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _vars_line(node: str, values: Mapping[str, str]) -> str:
    """``VARS node key="value" ...`` with DAGMan's escapes."""
    return f"VARS {node} " + " ".join(f'{k}="{_vars_value(v)}"' for k, v in values.items())


def dag_submit_description(dag_file: str | os.PathLike[str], *, batch_name: str | None = None,
                           dagman: str | None = None) -> Any:
    """The submit description of the DAGMan job of ``dag_file`` (``htcondor2.Submit.from_dag``).

    The DAG is named by its absolute path and runs in its own folder (``-UseDagDir`` and
    ``initialdir``), whatever the working directory of the caller. ``batch_name`` is the DAG's
    ``JobBatchName`` (its jobs inherit it); ``dagman`` the ``condor_dagman`` executable (default:
    the one on ``PATH``). The bindings write ``DAG.condor.sub`` beside the DAG.

    Raises
    ------
    CondorError
        When the bindings cannot build it (e.g. no ``condor_dagman``: not an access point).
    """
    htcondor2 = htcondor()
    path = Path(dag_file).resolve()
    if not path.is_file():
        raise CondorError(f"DAG file {path} does not exist")
    options: dict[str, Any] = {"force": True, "UseDagDir": True}
    if batch_name:
        options["BatchName"] = batch_name
    if dagman:
        options["DagmanPath"] = dagman
    try:
        sub = htcondor2.Submit.from_dag(str(path), options)
    except Exception as err:  # HTCondorException, or a missing condor_dagman
        raise CondorError(
            f"cannot submit {path}: {err}. Submitting needs an HTCondor access point (a schedd and "
            "condor_dagman); on one, run this command there or 'condor_submit_dag' on the DAG file."
        ) from err
    sub["initialdir"] = str(path.parent)
    return sub


def submit_dag(dag_file: str | os.PathLike[str], *, batch_name: str | None = None) -> int:
    """Submit a DAG to the local schedd (see :func:`dag_submit_description`); returns the DAGMan job's cluster id."""
    htcondor2 = htcondor()
    sub = dag_submit_description(dag_file, batch_name=batch_name)
    try:
        result = htcondor2.Schedd().submit(sub)
    except Exception as err:
        raise CondorError(
            f"cannot submit {dag_file}: {err}. Submitting needs an HTCondor access point (a schedd and "
            "condor_dagman); on one, run this command there or 'condor_submit_dag' on the DAG file."
        ) from err
    return int(result.cluster())
