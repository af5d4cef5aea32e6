"""Dask clients for event processing: the one factory behind ``hepscale process`` and studies.

:func:`dask_client` gives a ``dask.distributed.Client`` on

- an existing scheduler (``scheduler="tcp://host:8786"``),
- HTCondor workers started from a site profile through ``dask_jobqueue`` (``site`` and
  ``jobs > 0``), or
- a ``LocalCluster`` of ``workers`` single-threaded processes (the default).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["dask_client", "local_cluster"]


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A dask ``Client`` on a ``LocalCluster`` of ``workers`` single-threaded processes.

    Shutting the cluster down is given a minute; a slow shutdown (a loaded machine) is logged,
    not raised, since all results are in by then. The workers run without dask's sampling
    profiler (a few per cent of a core per worker, for a dashboard nobody sees here).
    """
    import asyncio

    import dask.config
    from dask.distributed import Client, LocalCluster

    with dask.config.set({"distributed.worker.profile.enabled": False}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
    client = Client(cluster)
    try:
        yield client
    finally:
        try:
            client.close(timeout=60)
            cluster.close(timeout=60)
        except (TimeoutError, asyncio.TimeoutError, asyncio.CancelledError) as err:
            logger.warning("the dask cluster did not shut down cleanly (%s: %s)", type(err).__name__, err)


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
        from hepscale.condor import dask_cluster, load_site

        cluster = dask_cluster(load_site(site))
        cluster.scale(jobs=jobs)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    else:
        with local_cluster(workers) as client:
            yield client
