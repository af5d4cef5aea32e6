"""A pool without a shared filesystem, in one process: runs a DAGMan DAG as HTCondor would.

No schedd is involved; the rules are those of HTCondor's manual (file transfer,
self-checkpointing, DAGMan), applied to the files ``hepscale study condor`` writes:

- the DAG: ``JOB``/``NODE`` (``DIR``), ``VARS`` (``$(JOB)`` and ``$(RETRY)`` in values), ``RETRY n
  [UNLESS-EXIT c]``, ``PARENT ... CHILD ...``, ``FINAL``, ``SCRIPT PRE|POST`` (run in the node's
  folder with ``$JOB``, ``$RETRY``, ``$RETURN``); ``CATEGORY``/``MAXJOBS``/``PRIORITY`` are
  ignored, any other keyword is refused. A node runs when all its parents succeeded; a failed
  node is retried as a new job (new cluster id, no spool) unless it exited with its
  ``UNLESS-EXIT`` status; the FINAL node runs last, whatever happened.
- each node's submit file is read with ``htcondor2.Submit`` when the node is submitted (after its
  PRE script), ``include : FILE`` read relative to the node's folder; every command must be a
  real submit command (:data:`SUBMIT_COMMANDS`, a custom ``+Attr``/``MY.Attr``, or a macro that
  the description uses as ``$(name)``), so a misspelled one is caught; values are expanded with
  the node's VARS and ``ClusterId``/``ProcId``.
- each execution runs in a new, empty scratch folder that holds only the executable and the
  ``transfer_input_files`` (at their relative paths with ``preserve_relative_paths``, else by
  base name; links followed), with ``_CONDOR_SCRATCH_DIR``, ``TMPDIR``, ``BATCH_SYSTEM``, the
  thread variables HTCondor sets (:data:`THREAD_VARIABLES` = ``request_cpus``), ``PATH``/``HOME``
  and the ``environment`` of the description, and nothing else of this process's environment
  (unless ``getenv``). An absolute path, URL or comma trouble in a transfer list is refused
  (:class:`PoolError`); a missing input puts the job on hold: the node fails, unretried (DAGMan
  does not retry a held job).
- outputs: ``transfer_output_files`` (with ``transfer_output_remaps``) are copied back to the
  node's folder when the job exits, with ``when_to_transfer_output = ON_EXIT`` whatever its
  status, with ``ON_SUCCESS`` only when it exits with ``success_exit_code`` (default 0); a
  missing output puts the job on hold. ``ON_EXIT_OR_EVICT`` is refused (not modelled).
- self-checkpointing: an exit with ``checkpoint_exit_code`` copies ``transfer_checkpoint_files``
  into the job's spool (replacing the previous checkpoint) and restarts the job in a fresh
  scratch folder holding the inputs and the spooled checkpoint (HTCondor may restart it in
  the same sandbox; a fresh one is the case a job must survive anyway).
- eviction: ``evict(execution)`` is asked while each execution runs; when it says so, the
  executable gets SIGTERM (and SIGKILL 30 s later). Whatever the job then does (the trainer
  writes a checkpoint and exits with 85), an evicted job's files are lost: it restarts from
  its last spooled checkpoint (that of its last checkpoint exit), or from scratch without one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import htcondor2

#: the submit commands the pool knows (lower case); custom attributes (+Attr, MY.Attr) pass too
SUBMIT_COMMANDS = frozenset("""
universe executable arguments args input output error log log_xml initialdir initial_dir
request_cpus request_memory request_disk request_gpus gpus_minimum_memory gpus_minimum_capability
gpus_maximum_capability gpus_minimum_runtime require_gpus cuda_version
should_transfer_files when_to_transfer_output transfer_executable transfer_input_files
transfer_output_files transfer_output_remaps transfer_checkpoint_files preserve_relative_paths
checkpoint_exit_code success_exit_code max_retries retry_until environment getenv
container_image docker_image transfer_container accounting_group accounting_group_user
requirements rank priority batch_name notification notify_user on_exit_hold on_exit_remove
periodic_hold periodic_release periodic_remove stream_output stream_error x509userproxy
use_x509userproxy max_idle job_max_vacate_time kill_sig want_graceful_removal
""".split())

#: variables HTCondor sets to the CPUs of the slot
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                    "OMP_THREAD_LIMIT", "PYTHON_CPU_COUNT")

_IGNORED_DAG_KEYWORDS = {"CATEGORY", "MAXJOBS", "PRIORITY", "CONFIG", "DOT", "NODE_STATUS_FILE", "JOBSTATE_LOG",
                         "SET_JOB_ATTR", "PRE_SKIP"}


class PoolError(Exception):
    """A DAG or submit file the pool refuses (not a job failure: a bug of what wrote it)."""


@dataclass
class Node:
    name: str
    submit: str
    folder: Path
    vars: dict[str, str] = field(default_factory=dict)
    retries: int = 0
    unless_exit: int | None = None
    parents: set[str] = field(default_factory=set)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    final: bool = False


@dataclass
class Execution:
    """One run of a job's executable (a job restarts after a checkpoint exit or an eviction)."""

    node: str
    retry: int
    cluster: int
    start: int  # 1, 2, ... within the job
    scratch: Path
    stderr: Path
    spooled: bool  # started with a spooled checkpoint
    exit_code: int | None = None
    evicted: bool = False

    def stderr_text(self) -> str:
        return self.stderr.read_text(errors="replace") if self.stderr.is_file() else ""


@dataclass
class JobRecord:
    cluster: int
    executions: list[Execution] = field(default_factory=list)
    exit_code: int | None = None
    held: str | None = None


@dataclass
class NodeRecord:
    status: str = "not run"  # done, failed, held, not run
    jobs: list[JobRecord] = field(default_factory=list)


@dataclass
class PoolResult:
    nodes: dict[str, NodeRecord]
    events: list[str]

    @property
    def ok(self) -> bool:
        return all(r.status == "done" for r in self.nodes.values())

    def executions(self) -> list[Execution]:
        return [e for r in self.nodes.values() for j in r.jobs for e in j.executions]


# ---------------------------------------------------------------------------- parsing
def _vars(text: str) -> dict[str, str]:
    out, pos = {}, 0
    pattern = re.compile(r'\s*([A-Za-z_+][\w.+]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
    while pos < len(text.rstrip()):
        m = pattern.match(text, pos)
        if not m:
            raise PoolError(f"cannot read VARS {text!r}")
        out[m.group(1)] = re.sub(r"\\(.)", r"\1", m.group(2))
        pos = m.end()
    return out


_INCLUDE = re.compile(r"^[ \t]*include[ \t]*:[ \t]*(\S+)[ \t]*$", re.I | re.M)


def _included(folder: Path, match: re.Match) -> str:
    """``include : FILE`` with FILE read relative to the node's folder (condor_submit's working directory)."""
    path = folder / match.group(1)
    if not path.is_file():
        raise PoolError(f"include : {match.group(1)}: {path} does not exist")
    return path.read_text()


def parse_dag(path: Path) -> dict[str, Node]:
    """The nodes of a DAG file (see the module docstring for what is read)."""
    nodes: dict[str, Node] = {}
    base = path.parent
    lines = [(n, raw.strip()) for n, raw in enumerate(path.read_text().splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
    for n, line in lines:  # the nodes first: the other commands may come before a node's JOB line
        word, *rest = line.split(None, 1)
        if word.upper() in ("JOB", "NODE", "FINAL"):
            name, submit, *opts = rest[0].split()
            folder = base / opts[opts.index("DIR") + 1] if "DIR" in opts else base
            nodes[name] = Node(name, submit, folder, final=word.upper() == "FINAL")
    for n, line in lines:
        word, *rest = line.split(None, 1)
        key, rest_text = word.upper(), (rest[0] if rest else "")
        parts = rest_text.split()
        if key in ("JOB", "NODE", "FINAL"):
            continue
        if key == "VARS":
            name, text = rest_text.split(None, 1)
            nodes[name].vars.update(_vars(text))
        elif key == "RETRY":
            nodes[parts[0]].retries = int(parts[1])
            if len(parts) > 2:
                if parts[2].upper() != "UNLESS-EXIT":
                    raise PoolError(f"{path}:{n}: cannot read {line!r}")
                nodes[parts[0]].unless_exit = int(parts[3])
        elif key == "PARENT":
            upper = [p.upper() for p in parts]
            i = upper.index("CHILD")
            for child in parts[i + 1:]:
                nodes[child].parents.update(parts[:i])
        elif key == "SCRIPT":
            if parts[0].upper() == "DEFER":
                parts = parts[3:]
            kind, name, *command = parts
            nodes[name].scripts[kind.upper()] = command
        elif key not in _IGNORED_DAG_KEYWORDS:
            raise PoolError(f"{path}:{n}: unknown DAG keyword {word!r}")
    return nodes


def condor_args(text: str) -> list[str]:
    """HTCondor's new argument syntax: ``"a 'b c' 'it''s'"``."""
    text = text.strip()
    if not (text.startswith('"') and text.endswith('"')):
        return text.split()
    text = text[1:-1].replace('""', '"')
    out, cur, quoted, have, i = [], "", False, False, 0
    while i < len(text):
        c = text[i]
        if c == "'":
            if quoted and text[i + 1:i + 2] == "'":
                cur += "'"
                i += 2
                continue
            quoted, have = not quoted, True
        elif c.isspace() and not quoted:
            if cur or have:
                out.append(cur)
            cur, have = "", False
        else:
            cur += c
        i += 1
    if quoted:
        raise PoolError(f"unbalanced quotes in {text!r}")
    if cur or have:
        out.append(cur)
    return out


def _environment(text: str) -> dict[str, str]:
    env = {}
    for item in condor_args(text):
        key, sep, value = item.partition("=")
        if not sep:
            raise PoolError(f"environment: {item!r} is not KEY=VALUE")
        env[key] = value
    return env


def _list(value: str | None, what: str, where: str) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    for item in items:
        if os.path.isabs(item) or "://" in item:
            raise PoolError(f"{where}: {what} holds {item!r}: an absolute path or URL (nothing is shared with the "
                            "access point)")
    return items


# ---------------------------------------------------------------------------- running jobs
def _copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=False, dirs_exist_ok=True)
    else:
        shutil.copy2(src, dst)


def _placed(item: str, preserve: bool) -> str:
    item = item.rstrip("/")
    return os.path.normpath(item) if preserve else os.path.basename(item)


class Pool:
    """Runs DAGs (see the module docstring); ``slots`` jobs at a time."""

    def __init__(self, work: Path, *, slots: int = 2, evict: Callable[[Execution], bool] | None = None,
                 timeout: float = 600.0) -> None:
        self.work, self.slots, self.evict, self.timeout = Path(work), slots, evict, timeout
        self.events: list[str] = []
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._cluster = 0

    def _event(self, text: str) -> None:
        with self._lock:
            self.events.append(f"{time.monotonic() - self._t0:7.1f} s  {text}")

    def _new_cluster(self) -> int:
        with self._lock:
            self._cluster += 1
            return self._cluster

    def run(self, dag_file: str | os.PathLike[str]) -> PoolResult:
        path = Path(dag_file).resolve()
        nodes = parse_dag(path)
        records = {name: NodeRecord() for name in nodes}
        regular = [n for n in nodes.values() if not n.final]
        done: set[str] = set()
        failed: set[str] = set()
        running: dict = {}
        with ThreadPoolExecutor(self.slots) as pool:
            while True:
                for node in regular:
                    if node.name in done | failed or node.name in running.values():
                        continue
                    if node.parents & failed:
                        failed.add(node.name)  # never runs
                        continue
                    if node.parents <= done and len(running) < self.slots:
                        running[pool.submit(self._node, node, records[node.name])] = node.name
                if not running:
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    future.result()
                    (done if records[name].status == "done" else failed).add(name)
            for node in nodes.values():
                if node.final:
                    self._node(node, records[node.name])
        return PoolResult(records, list(self.events))

    def _node(self, node: Node, record: NodeRecord) -> None:
        for retry in range(node.retries + 1):
            status = self._script(node, "PRE", retry, None)
            job = JobRecord(self._new_cluster())
            record.jobs.append(job)
            if status == 0:
                self._job(node, retry, job)
                status = job.exit_code if job.held is None else 1
            if "POST" in node.scripts:
                status = self._script(node, "POST", retry, status)
            if job.held is not None:
                record.status = "held"
                return
            if status == 0:
                record.status = "done"
                return
            self._event(f"{node.name}: attempt {retry} failed with {status}")
            if node.unless_exit is not None and status == node.unless_exit:
                break
        record.status = "failed"

    def _script(self, node: Node, kind: str, retry: int, returned: int | None) -> int:
        if kind not in node.scripts:
            return 0
        subst = {"$JOB": node.name, "$RETRY": str(retry), "$RETURN": str(returned)}
        command = [subst.get(a, a) for a in node.scripts[kind]]
        return subprocess.run(command, cwd=node.folder, check=False).returncode

    def _description(self, node: Node, retry: int, cluster: int) -> htcondor2.Submit:
        file = node.folder / node.submit
        text = _INCLUDE.sub(lambda m: _included(node.folder, m), file.read_text())
        sub = htcondor2.Submit(text)
        used = set(re.findall(r"\$\((\w+)\)", text))  # a key used as $(key) is a macro, not a command
        for key in sub.keys():
            k = key.lower()
            if not (k in SUBMIT_COMMANDS or k.startswith(("+", "my.")) or key in used):
                raise PoolError(f"{file}: {key!r} is not an HTCondor submit command")
        for key, value in node.vars.items():
            sub[key] = value.replace("$(JOB)", node.name).replace("$(RETRY)", str(retry))
        sub["ClusterId"] = sub["Cluster"] = str(cluster)
        sub["ProcId"] = sub["Process"] = "0"
        return sub

    def _job(self, node: Node, retry: int, job: JobRecord) -> None:
        sub = self._description(node, retry, job.cluster)
        where = f"{node.name} ({node.folder / node.submit})"

        def get(key: str, default: str | None = None) -> str | None:
            return str(sub.expand(key)) if key in sub else default

        universe = (get("universe", "vanilla") or "vanilla").lower()
        if universe not in ("vanilla", "container"):
            raise PoolError(f"{where}: universe {universe!r}: this pool runs vanilla and container jobs")
        if (get("should_transfer_files", "") or "").upper() != "YES":
            raise PoolError(f"{where}: should_transfer_files must be YES (nothing is shared)")
        when = (get("when_to_transfer_output", "ON_EXIT") or "ON_EXIT").upper()
        if when not in ("ON_EXIT", "ON_SUCCESS"):
            raise PoolError(f"{where}: when_to_transfer_output = {when} is not modelled")
        preserve = (get("preserve_relative_paths", "false") or "").lower() == "true"
        inputs = _list(get("transfer_input_files"), "transfer_input_files", where)
        outputs = _list(get("transfer_output_files"), "transfer_output_files", where)
        ckpt_files = _list(get("transfer_checkpoint_files"), "transfer_checkpoint_files", where)
        ckpt_code = int(get("checkpoint_exit_code")) if "checkpoint_exit_code" in sub else None
        success = int(get("success_exit_code", "0") or 0)
        remaps = dict(tuple(p.strip() for p in item.split("=", 1))
                      for item in (get("transfer_output_remaps", "") or "").strip('"').split(";") if "=" in item)
        cpus = int(get("request_cpus", "1") or 1)
        executable = node.folder / (get("executable") or "")
        args = condor_args(get("arguments", '""') or '""')
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "BATCH_SYSTEM": "HTCondor",
               **{v: str(cpus) for v in THREAD_VARIABLES}}
        if (get("getenv", "false") or "").lower() == "true":
            env = {**os.environ, **env}
        env.update(_environment(get("environment", '""') or '""'))
        logs = {k: node.folder / v for k in ("output", "error") if (v := get(k))}
        for path in logs.values():
            if not path.parent.is_dir():
                raise PoolError(f"{where}: the folder of {path} does not exist (condor_submit would fail)")
        spool = self.work / f"spool-{job.cluster}"
        for start in range(1, 1000):
            missing = [i for i in inputs if not (node.folder / i.rstrip("/")).exists()]
            if missing:
                job.held = f"transfer_input_files: {', '.join(missing)} missing"
                self._event(f"{node.name}: held: {job.held}")
                return
            scratch = Path(tempfile.mkdtemp(prefix=f"{node.name.replace(':', '-')}-", dir=self.work))
            shutil.copy2(executable, scratch / executable.name)
            (scratch / executable.name).chmod(0o755)
            for item in inputs:
                _copy(node.folder / item.rstrip("/"), scratch / _placed(item, preserve))
            if spool.is_dir():
                shutil.copytree(spool, scratch, dirs_exist_ok=True)
            run_env = {**env, "_CONDOR_SCRATCH_DIR": str(scratch), "TMPDIR": str(scratch), "HOME": str(scratch)}
            stdout, stderr = scratch.parent / f"{scratch.name}.out", scratch.parent / f"{scratch.name}.err"
            execution = Execution(node.name, retry, job.cluster, start, scratch, stderr, spool.is_dir())
            job.executions.append(execution)
            self._event(f"{node.name}: cluster {job.cluster} start {start}" + (" from spool" if spool.is_dir() else ""))
            with open(stdout, "wb") as out, open(stderr, "wb") as err:
                proc = subprocess.Popen([str(scratch / executable.name), *args], cwd=scratch, env=run_env,
                                        stdout=out, stderr=err, start_new_session=True)
                execution.exit_code = self._wait(proc, execution)
            for key, path in logs.items():
                with open(path, "ab") as handle:
                    handle.write((stdout if key == "output" else stderr).read_bytes())
            if execution.evicted:
                self._event(f"{node.name}: evicted at start {start} (exit {execution.exit_code}); files discarded")
                continue
            if ckpt_code is not None and execution.exit_code == ckpt_code:
                missing = [c for c in ckpt_files if not (scratch / c).exists()]
                if missing:
                    job.held = f"transfer_checkpoint_files: {', '.join(missing)} missing"
                    return
                shutil.rmtree(spool, ignore_errors=True)
                spool.mkdir()
                for c in ckpt_files:
                    _copy(scratch / c, spool / _placed(c, preserve))
                self._event(f"{node.name}: checkpoint exit at start {start}, spooled {ckpt_files}")
                continue
            job.exit_code = execution.exit_code
            if when == "ON_EXIT" or execution.exit_code == success:
                missing = [o for o in outputs if not (scratch / o).exists()]
                if missing:
                    job.held = f"transfer_output_files: {', '.join(missing)} missing"
                    self._event(f"{node.name}: held: {job.held}")
                    return
                for o in outputs:
                    target = remaps.get(o) or _placed(o, preserve)
                    _copy(scratch / o, node.folder / target)
            return
        raise PoolError(f"{where}: more than 1000 starts")

    def _wait(self, proc: subprocess.Popen, execution: Execution) -> int:
        t0, signalled = time.monotonic(), None
        while proc.poll() is None:
            if signalled is None and self.evict is not None and self.evict(execution):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)  # to the job's process, as the starter does
                    execution.evicted, signalled = True, time.monotonic()
            if signalled is not None and time.monotonic() - signalled > 30:
                os.killpg(proc.pid, signal.SIGKILL)
            if time.monotonic() - t0 > self.timeout:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise PoolError(f"{execution.node}: ran longer than {self.timeout} s")
            time.sleep(0.02)
        return int(proc.returncode)


def run_dag(dag_file: str | os.PathLike[str], work: str | os.PathLike[str], **kwargs) -> PoolResult:
    """Run ``dag_file`` on a :class:`Pool` whose scratch folders and spools go to ``work``."""
    Path(work).mkdir(parents=True, exist_ok=True)
    return Pool(Path(work), **kwargs).run(dag_file)


if __name__ == "__main__":  # python tests/_condor_pool.py STUDY/study.dag WORKDIR
    result = run_dag(sys.argv[1], sys.argv[2])
    print("\n".join(result.events))
    print({name: r.status for name, r in result.nodes.items()})
    raise SystemExit(0 if result.ok else 1)
