"""A local dask cluster for event processing (:func:`local_cluster`).

An existing scheduler or HTCondor workers of a site profile come from
:func:`hepscale.condor.dask.dask_client`, the one factory behind ``hepscale process --scheduler
/ --site`` and studies.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["local_cluster"]


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
