"""Submit descriptions of hepscale jobs, built and checked with the ``htcondor2`` bindings.

Every job runs the wrapper ``condor/hepscale_job.sh`` with ``hepscale`` arguments (a list,
quoted by :func:`~hepscale.condor.condor_arguments`), in its own scratch folder on a worker
that shares no filesystem with the access point:

- inputs: ``transfer_input_files`` with ``preserve_relative_paths = True``, every path
  relative to the study folder (the job finds them where the local executor does);
- outputs: a training job transfers its run folder back whenever it exits
  (``when_to_transfer_output = ON_EXIT``: the folder always exists, it is also an input), so a
  failed attempt's last checkpoint reaches the access point and the DAG's retry resumes from
  it; every other job transfers its outputs only when it succeeds (``ON_SUCCESS`` with
  ``success_exit_code = 0``): a failed job whose outputs are missing is not held but fails,
  and the DAG retries it;
- self-checkpointing: training jobs declare ``checkpoint_exit_code = 85`` and
  ``transfer_checkpoint_files`` = their run folder, and the trainer exits with 85 every
  ``checkpoint_exit_minutes`` of the site profile (``HEPSCALE_CHECKPOINT_EXIT_MINUTES``);
  HTCondor spools the run folder and restarts the job, which resumes from it (also after an
  eviction, from the last spooled checkpoint);
- software and threads: the wrapper learns from ``HEPSCALE_*`` environment variables how to find
  ``python3`` with hepscale (:class:`~hepscale.condor.site.Software`) and the requested CPUs;
- logs: ``logs/KIND-JOBID.CLUSTER.{out,err}``, one pair per attempt (each DAG retry is a new
  cluster), and ``JobBatchName`` (``batch_name``) groups a study's jobs in ``condor_q``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from hepscale.condor._bindings import CondorError, condor_literal, htcondor
from hepscale.condor.site import _SIZE, SiteProfile
from hepscale.errors import EXIT_CHECKPOINT

__all__ = ["CHECKPOINT_EXIT_CODE", "SOFTWARE_DIR", "Job", "environment_value", "queue_from_description",
           "software_inputs", "submit_description", "validate_submit", "wrapper_path", "write_queue_file"]

#: exit code of a job that checkpointed (periodically, or on SIGTERM/SIGUSR1) and wants to be restarted
CHECKPOINT_EXIT_CODE = EXIT_CHECKPOINT

#: folder of the study that holds the shipped software (wheel or packed environment)
SOFTWARE_DIR = "software"


@dataclass(frozen=True)
class Job:
    """One job: a stable id and the ``hepscale`` arguments it runs (a list, never a shell string)."""

    id: str
    args: tuple[str, ...]

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", self.id):
            raise ValueError(f"job id {self.id!r} may only hold letters, digits and _.+-")


def wrapper_path() -> Path:
    """The job wrapper script ``condor/hepscale_job.sh`` shipped with hepscale."""
    from hepscale.resources import resource_path

    return resource_path("condor/hepscale_job.sh")


def environment_value(env: Mapping[str, str]) -> str:
    """The ``environment`` submit value (new syntax: ``"A='x y' B=z"``); a ``$`` is written literally."""
    parts = []
    for key, value in sorted(env.items()):
        text = str(value)
        if '"' in text or "\n" in text:
            raise CondorError(f"environment: the value of {key} holds a double quote or a newline, which HTCondor "
                              "cannot pass")
        parts.append(f"{key}='{text.replace(chr(39), chr(39) * 2)}'")
    return '"' + " ".join(parts) + '"'


def software_inputs(site: SiteProfile) -> list[str]:
    """Files of the study folder every job transfers: the shipped wheel or packed environment."""
    s = site.software
    return [f"{SOFTWARE_DIR}/{Path(p).name}" for p in (s.wheel, s.tarball) if p]


def _software_env(site: SiteProfile) -> dict[str, str]:
    s = site.software
    env = {"HEPSCALE_PYTHON": condor_literal(s.python, what="software.python")}
    if s.setup:
        env["HEPSCALE_SETUP"] = condor_literal(s.setup, what="software.setup")
    if s.wheel:
        env["HEPSCALE_WHEEL"] = f"{SOFTWARE_DIR}/{Path(s.wheel).name}"
    if s.tarball:
        env["HEPSCALE_TARBALL"] = f"{SOFTWARE_DIR}/{Path(s.tarball).name}"
    return env


def site_commands(site: SiteProfile) -> dict[str, str]:
    """The site's container image, accounting group and requirements, where set, as submit commands."""
    commands = {"container_image": site.container_image, "accounting_group": site.accounting_group,
                "requirements": site.requirements}
    return {k: v for k, v in commands.items() if v}


def submit_description(
    kind: str,
    site: SiteProfile,
    *,
    logs: str = "logs",
    training: bool = False,
    transfer_input: Sequence[str] = (),
    checkpoint_dir: str | None = None,
    outputs: Sequence[str] = (),
    gpus: int | None = None,
    gpu_memory: str | None = None,
    batch_name: str | None = None,
) -> dict[str, str]:
    """The submit commands of one job kind (without the queue statement); see the module docstring.

    Values are submit-description text (macros such as ``$(job_id)`` are expanded): a path
    that may hold a ``$`` goes through :func:`~hepscale.condor.condor_literal` first. A
    ``transfer_input`` path with a comma is refused (:class:`CondorError` naming it): HTCondor
    would split it; so is an absolute one (the job would not find it where its command says).

    Jobs receive ``$(job_id)`` and ``$(args)`` from item data or DAG VARS. Training jobs
    request the site's training GPUs, declare :data:`CHECKPOINT_EXIT_CODE` as
    ``checkpoint_exit_code`` and transfer their run folder (``checkpoint_dir``, default
    ``$(job_id)``) as checkpoint and output. ``gpus`` overrides the GPUs of the kind's resources;
    ``gpu_memory`` is the ``gpus_minimum_memory`` (MB, or a macro such as ``$(gpu_memory)``).
    """
    res = site.train if training else site.light
    n_gpus = res.request_gpus if gpus is None else gpus
    env = {**_software_env(site), "HEPSCALE_CPUS": str(res.request_cpus), "HEPSCALE_JOB_KIND": kind,
           "HEPSCALE_ATTEMPT": "$(attempt)"}  # the DAG node's retry ($(RETRY) through VARS; empty outside a DAG)
    desc: dict[str, str] = {
        "universe": "container" if site.container_image else site.universe,
        "executable": wrapper_path().name,
        "arguments": "$(args)",
        "output": f"{logs}/{kind}-$(job_id).$(ClusterId).out",
        "error": f"{logs}/{kind}-$(job_id).$(ClusterId).err",
        "log": f"{logs}/{kind}.log",
        "request_cpus": str(res.request_cpus),
        "request_memory": res.request_memory,
        "request_disk": res.request_disk,
        "should_transfer_files": "YES",
        "transfer_executable": "True",
        "preserve_relative_paths": "True",
    }
    if n_gpus:
        desc["request_gpus"] = str(n_gpus)
        if gpu_memory:
            desc["gpus_minimum_memory"] = gpu_memory
        if site.gpu.capability is not None:
            desc["gpus_minimum_capability"] = f"{site.gpu.capability:g}"
    inputs = [*software_inputs(site), *transfer_input]
    for path in inputs:
        if "," in path:
            raise CondorError(f"transfer_input_files: {path!r} holds a comma, which HTCondor reads as a list "
                              "separator; rename or move it to a path without commas")
        if Path(path).is_absolute():
            raise CondorError(f"transfer_input_files: {path!r} is absolute; the job runs its command in its "
                              "scratch folder, so inputs are paths relative to the study folder")
    if inputs:
        desc["transfer_input_files"] = ", ".join(inputs)
    if training:
        run_dir = checkpoint_dir or "$(job_id)"
        desc["when_to_transfer_output"] = "ON_EXIT"
        desc["checkpoint_exit_code"] = str(CHECKPOINT_EXIT_CODE)
        desc["transfer_checkpoint_files"] = run_dir
        desc["transfer_output_files"] = run_dir
        if site.checkpoint_exit_minutes is not None:
            env["HEPSCALE_CHECKPOINT_EXIT_MINUTES"] = f"{site.checkpoint_exit_minutes:g}"
    else:
        desc["when_to_transfer_output"] = "ON_SUCCESS"
        desc["success_exit_code"] = "0"
        if outputs:
            desc["transfer_output_files"] = ", ".join(outputs)
    desc["max_retries"] = str(res.max_retries)
    desc.update(site_commands(site))
    if batch_name or site.batch_name:
        desc["batch_name"] = condor_literal(site.batch_name or batch_name or "", what="batch name")
    env.update({k: condor_literal(v, what=f"environment {k}") for k, v in site.environment.items()})
    desc["environment"] = environment_value(env)
    desc.update(site.extra)
    return desc


def queue_from_description(desc: Mapping[str, str], jobs: Sequence[Job], items_file: str) -> str:
    """Submit-file text that queues one job per line of ``items_file`` (``queue ... from``)."""
    sub = htcondor().Submit(dict(desc))
    sub.setQArgs(f"job_id, args from {items_file}")
    return str(sub)


def _item_lines(jobs: Sequence[Job]) -> str:
    from hepscale.condor._bindings import condor_arguments

    # item data: the last column (args) takes the rest of the line, commas and spaces included
    return "".join(f"{job.id}, {condor_arguments(job.args)}\n" for job in jobs)


def validate_submit(text: str, *, items: str | None = None) -> list[dict[str, str]]:
    """Parse a submit description with the bindings; return its item data (checked against its variables).

    Raises
    ------
    CondorError
        When the bindings cannot parse it, a size has no unit HTCondor understands, or an
        item lacks a variable the description uses.
    """
    htcondor2 = htcondor()
    try:
        sub = htcondor2.Submit(text)
    except Exception as err:  # the bindings raise ValueError or HTCondorException
        raise CondorError(f"HTCondor cannot parse the submit description: {err}") from err
    for key in ("request_memory", "request_disk"):
        value = sub.get(key)
        if value is not None and "$(" not in value and not _SIZE.match(value):
            raise CondorError(f"{key} = {value!r} is not a size HTCondor understands")
    qargs = sub.getQArgs()
    external = bool(re.search(r"\bfrom\s+[^\s(]", qargs or ""))  # items in a file named by the queue statement
    if qargs and not external:
        try:
            return [dict(row) for row in sub.itemdata() or []]
        except Exception as err:  # the bindings parse queue arguments lazily
            raise CondorError(f"HTCondor cannot parse the queue statement 'queue {qargs}': {err}") from err
    if items is None or not qargs:
        return []
    columns = qargs.split(" from ", 1)[0]
    inline = "\n".join(line for line in text.splitlines() if not line.strip().lower().startswith("queue"))
    try:
        rows = list(htcondor2.Submit(f"{inline}\nqueue {columns} from (\n{items})\n").itemdata())
    except Exception as err:
        raise CondorError(f"HTCondor cannot parse the item data: {err}") from err
    used = set(re.findall(r"\$\((\w+)\)", text))
    for n, row in enumerate(rows, 1):
        missing = {u for u in used if u in ("job_id", "args")} - {k for k, v in row.items() if v}
        if missing:
            raise CondorError(f"item {n} ({row}) gives no value for {sorted(missing)}")
    return rows


def write_queue_file(folder: Path, kind: str, desc: Mapping[str, str], jobs: Sequence[Job]) -> Path:
    """Write ``KIND.sub`` (queue ... from ``KIND.items``) for direct submission, validated."""
    from hepscale._io import atomic_write_text

    items = _item_lines(jobs)
    text = queue_from_description(desc, jobs, f"{kind}.items")
    validate_submit(text, items=items)
    atomic_write_text(folder / f"{kind}.items", items)
    atomic_write_text(folder / f"{kind}.sub", text)
    return folder / f"{kind}.sub"
