"""dask workers as HTCondor jobs: a ``dask_jobqueue.HTCondorCluster`` from a site profile, and
:func:`dask_client`, the one client factory of ``hepscale process`` and studies (an existing
scheduler, HTCondor workers of a site profile, or a local cluster).

The workers get the software as the DAG's jobs do (:class:`~hepscale.condor.site.Software`):
from the container image, a sourced ``setup`` line, a packed environment unpacked in the job's
scratch folder, or the hepscale wheel installed there; ``python`` is that environment's
``python3``. Nothing assumes a shared filesystem: the worker's local directory (spilled data)
is its scratch folder, the cluster's shared temporary directory is local to the client, and
worker logs stay with HTCondor unless ``log_directory`` is given.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hepscale.condor._bindings import CondorError, optional
from hepscale.condor.site import SiteProfile
from hepscale.condor.submit import site_commands

__all__ = ["dask_client", "dask_cluster", "worker_prologue"]

#: the job's scratch folder, as the worker's shell sees it
_SCRATCH = '"${_CONDOR_SCRATCH_DIR:-$PWD}"'


def worker_prologue(site: SiteProfile, cores: int) -> list[str]:
    """Shell lines run on the worker before ``python -m distributed.cli.dask_worker``."""
    s = site.software
    lines = [f"export NUMBA_CACHE_DIR={_SCRATCH}/numba-cache"]
    lines += [f"export {v}=${{OMP_NUM_THREADS:-{cores}}}" for v in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")]
    lines.append(f"export OMP_NUM_THREADS=${{OMP_NUM_THREADS:-{cores}}}")
    if s.setup:
        lines.append(s.setup)
    if s.tarball:
        name = shlex.quote(Path(s.tarball).name)
        lines += [f"mkdir -p {_SCRATCH}/env", f"tar -xzf {name} -C {_SCRATCH}/env",
                  f". {_SCRATCH}/env/bin/activate", f"if [ -x {_SCRATCH}/env/bin/conda-unpack ]; then "
                  f"{_SCRATCH}/env/bin/conda-unpack; fi"]
    if s.wheel:
        name = shlex.quote(Path(s.wheel).name)
        lines += [f"{shlex.quote(s.python)} -m pip install --quiet --no-deps --no-index --target "
                  f"{_SCRATCH}/hepscale-pkgs {name}", f"export PYTHONPATH={_SCRATCH}/hepscale-pkgs${{PYTHONPATH:+:$PYTHONPATH}}"]
    return lines


def dask_cluster(
    site: SiteProfile,
    *,
    scheduler_options: Mapping[str, Any] | None = None,
    log_directory: str | os.PathLike[str] | None = None,
    name: str = "hepscale-dask",
) -> Any:
    """A ``dask_jobqueue.HTCondorCluster`` configured from the site profile (workers are not started).

    Scale it with ``cluster.scale(jobs=N)`` and pass ``Client(cluster)`` to the processor; the
    generated submit description is ``cluster.job_script()``. The scheduler runs here; workers
    must reach it (``scheduler_options``, e.g. ``{"host": "0.0.0.0", "port": 8786}`` or a
    ``contact_address`` behind a NAT).

    Raises
    ------
    CondorError
        When a shipped software file named by the profile does not exist.
    """
    HTCondorCluster = optional("dask_jobqueue", "dask-jobqueue, needed for HTCondor dask workers").HTCondorCluster
    res = site.dask_worker
    s = site.software
    inputs = []
    for what, value in (("software.wheel", s.wheel), ("software.tarball", s.tarball)):
        if value:
            path = Path(value).expanduser().resolve()
            if not path.is_file():
                raise CondorError(f"site profile {site.name}: {what}: {path} does not exist")
            inputs.append(str(path))
    extra: dict[str, Any] = {"should_transfer_files": "YES", "when_to_transfer_output": "ON_EXIT",
                             **site_commands(site)}
    if site.container_image:
        extra["universe"] = "container"
    if inputs:
        extra["transfer_input_files"] = ", ".join(inputs)
    if res.request_gpus:
        extra["request_gpus"] = str(res.request_gpus)
    extra.update(site.extra)
    return HTCondorCluster(
        cores=res.request_cpus,
        memory=res.request_memory,
        disk=res.request_disk,
        name=name,
        python="python3" if (s.tarball and s.python == "python3") else s.python,
        job_script_prologue=worker_prologue(site, res.request_cpus),
        job_extra_directives=extra,
        local_directory="$_CONDOR_SCRATCH_DIR",
        log_directory=None if log_directory is None else str(log_directory),
        shared_temp_directory=tempfile.gettempdir(),
        scheduler_options=dict(scheduler_options or {}),
        silence_logs="error",
    )


@contextlib.contextmanager
def dask_client(
    *,
    workers: int = 2,
    scheduler: str | None = None,
    site: str | os.PathLike[str] | None = None,
    jobs: int = 0,
) -> Iterator[Any]:
    """A dask client: an existing ``scheduler``, ``jobs`` HTCondor workers of ``site``, or a local cluster.

    Parameters
    ----------
    workers
        Processes of the local cluster.
    scheduler
        Address of an existing scheduler (takes precedence).
    site, jobs
        Site profile (``configs/sites/NAME.yaml`` or NAME) and the number of HTCondor worker jobs
        (``dask_jobqueue.HTCondorCluster``); used when both are set.
    """
    from dask.distributed import Client

    if scheduler:
        with Client(scheduler) as client:
            yield client
    elif site and jobs > 0:
        from hepscale.condor.site import load_site

        cluster = dask_cluster(load_site(site))
        cluster.scale(jobs=jobs)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    else:
        from hepscale.jets.cluster import local_cluster

        with local_cluster(workers) as client:
            yield client
