"""HTCondor: site profiles, submit descriptions and DAGMan DAGs for a pool without a shared filesystem.

Everything is built with ``htcondor2`` (``Submit`` and ``htcondor2.dags``) and checked by
parsing it back with the bindings, so a description that HTCondor cannot read is an error here,
not on the pool. Nothing is submitted unless asked: :func:`submit_dag` hands a DAG to the
local schedd (from the DAG's own folder) and raises :class:`CondorError` with a clear message
where there is none.

- :mod:`hepscale.condor.site`: site profiles (``configs/sites/NAME.yaml``): software on the
  worker, resources, GPUs, checkpoint interval, the site's own submit commands;
- :mod:`hepscale.condor.submit`: submit descriptions (transfers, self-checkpointing, logs);
- :mod:`hepscale.condor.dag`: DAGs (``RETRY n UNLESS-EXIT 2``) and their submission;
- :mod:`hepscale.condor.gpus`: ``gpus_minimum_memory`` of a training run;
- :mod:`hepscale.condor.dask`: ``dask_jobqueue.HTCondorCluster`` workers, and
  :func:`~hepscale.condor.dask.dask_client`, the dask client of ``hepscale process`` and studies;
- ``python -m hepscale.condor ARGS`` (:mod:`hepscale.condor.cli`): what the job wrapper runs on
  the worker, the ``hepscale`` command ``ARGS``.

Arguments are always given as lists and quoted with HTCondor's "new" argument syntax by
:func:`condor_arguments`; no shell string is assembled by hand. Every job runs the wrapper
``condor/hepscale_job.sh`` with ``hepscale`` arguments, i.e. the same commands the local
executor runs.

The HTCondor bindings (``htcondor2``) and ``dask_jobqueue`` are optional (``pip install
'hepscale[condor]'``): they are imported when a function needs them, and a missing one raises
``ModuleNotFoundError`` that says what to install.
"""

from __future__ import annotations

from hepscale.condor._bindings import CondorError, condor_arguments, condor_literal
from hepscale.condor.dag import FinalJob, dag_submit_description, submit_dag, write_dag
from hepscale.condor.dask import dask_cluster
from hepscale.condor.gpus import gpu_memory_mb
from hepscale.condor.site import (
    DEFAULT_SITE,
    GpuSettings,
    Resources,
    SiteProfile,
    Software,
    load_site,
)
from hepscale.condor.submit import (
    CHECKPOINT_EXIT_CODE,
    Job,
    queue_from_description,
    submit_description,
    validate_submit,
    wrapper_path,
    write_queue_file,
)

__all__ = [
    "CHECKPOINT_EXIT_CODE",
    "DEFAULT_SITE",
    "CondorError",
    "GpuSettings",
    "FinalJob",
    "Job",
    "Resources",
    "SiteProfile",
    "Software",
    "load_site",
    "condor_arguments",
    "condor_literal",
    "submit_description",
    "queue_from_description",
    "validate_submit",
    "write_dag",
    "write_queue_file",
    "submit_dag",
    "dag_submit_description",
    "wrapper_path",
    "dask_cluster",
    "gpu_memory_mb",
]
