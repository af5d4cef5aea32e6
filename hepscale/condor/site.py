"""Site profiles: what differs between HTCondor pools (``configs/sites/NAME.yaml``).

A profile says how the software reaches the worker (:class:`Software`), what each kind of job
requests (:class:`Resources`), what GPUs the training, sampling and evaluation jobs need
(:class:`GpuSettings`), how often training checkpoints and exits (HTCondor self-checkpointing),
and the site's own submit commands (accounting group, requirements, ``+DESIRED_Sites``,
``+JobFlavour``, container attributes, ... in ``extra``). An unknown key is a
:class:`~hepscale.errors.ConfigError` naming the key and the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from hepscale.condor._bindings import CondorError

__all__ = ["DEFAULT_SITE", "GpuSettings", "Resources", "SiteProfile", "Software", "load_site"]

#: the profile ``hepscale study condor`` uses without ``--site``
DEFAULT_SITE = "generic"

_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B?|[KMGT])?\s*$", re.IGNORECASE)


@dataclass
class Resources:
    """Per-job resources of one job kind (memory and disk with units, e.g. ``16GB``)."""

    request_cpus: int = 1
    request_gpus: int = 0
    request_memory: str = "4GB"
    request_disk: str = "10GB"
    max_retries: int = 3

    def __post_init__(self) -> None:
        for name in ("request_memory", "request_disk"):
            value = getattr(self, name)
            if not _SIZE.match(value):
                raise ValueError(f"{name} must be a size such as '16GB' or '512MB', got {value!r}")
        if self.request_cpus < 1 or self.request_gpus < 0 or self.max_retries < 0:
            raise ValueError("request_cpus must be >= 1, request_gpus and max_retries >= 0")


@dataclass
class Software:
    """How ``python3`` with hepscale is found on the worker (the wrapper ``condor/hepscale_job.sh``).

    - a container image (the profile's ``container_image``, or a site's image attribute such as
      ``+SingularityImage`` in ``extra``) that holds hepscale: nothing else to set;
    - ``setup``: a shell line the wrapper sources first, e.g. an LCG view on CVMFS that
      provides python3, torch and the other dependencies;
    - ``wheel``: the hepscale wheel built on the access point (``python -m pip wheel --no-deps
      -w dist .``); copied into the study folder, transferred with every job and installed by
      the wrapper into the job's scratch folder with ``pip install --no-deps --no-index``
      (the dependencies come from ``setup`` or the image);
    - ``tarball``: a packed, relocatable environment (``conda-pack`` or ``venv-pack``
      ``.tar.gz``) holding hepscale and its dependencies; copied into the study folder,
      transferred, unpacked in the scratch folder and activated;
    - ``python``: the interpreter to run (default ``python3`` from ``PATH``; an absolute path
      where the workers share an installation, e.g. on CVMFS).
    """

    python: str = "python3"
    setup: str | None = None
    wheel: str | None = None
    tarball: str | None = None

    def __post_init__(self) -> None:
        if not self.python.strip():
            raise ValueError("software.python must name an interpreter, e.g. python3")
        if self.wheel and self.tarball:
            raise ValueError("set one of software.wheel and software.tarball, not both")
        for name, suffix in (("wheel", ".whl"), ("tarball", ".tar.gz")):
            value = getattr(self, name)
            if value and not str(value).endswith(suffix):
                raise ValueError(f"software.{name} must be a {suffix} file, got {value!r}")


@dataclass
class GpuSettings:
    """GPUs of the jobs: ``min_memory_mb`` the least ``gpus_minimum_memory`` of a training job
    (each run asks for more when its model needs it, see :func:`hepscale.condor.gpus.gpu_memory_mb`);
    ``capability`` the ``gpus_minimum_capability`` (e.g. 7.0 for bf16-capable cards; None: any);
    ``inference``: sampling and evaluation jobs request one GPU and run with ``--device cuda``."""

    min_memory_mb: int = 4000
    capability: float | None = None
    inference: bool = True

    def __post_init__(self) -> None:
        if self.min_memory_mb < 0:
            raise ValueError(f"gpu.min_memory_mb must be >= 0, got {self.min_memory_mb}")


@dataclass
class SiteProfile:
    """What a pool needs in every submit description.

    ``universe``: ``vanilla`` (with ``container_image`` set, jobs are container-universe jobs);
    ``container_image``: an Apptainer/Docker image holding hepscale (``container_image`` submit
    command); ``accounting_group``: the site's accounting group; ``requirements``: a ClassAd
    expression added to every job; ``environment``: variables of every job; ``extra``: further
    submit commands (``+DESIRED_Sites``, ``+JobFlavour``, ``+SingularityImage``, ``MY.*``, ...);
    ``batch_name``: the ``JobBatchName`` of the jobs (None: the study's name);
    ``checkpoint_exit_minutes``: training jobs checkpoint and exit with 85 this often, so that
    HTCondor spools their checkpoint (None: only on eviction); ``software``, ``gpu``: see
    :class:`Software`, :class:`GpuSettings`; ``train``/``light``/``dask_worker``: resources of
    training jobs, of the other jobs and of dask workers.
    """

    name: str = "local"
    universe: str = "vanilla"
    container_image: str | None = None
    accounting_group: str | None = None
    requirements: str | None = None
    environment: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    batch_name: str | None = None
    checkpoint_exit_minutes: float | None = 60.0
    software: Software = field(default_factory=Software)
    gpu: GpuSettings = field(default_factory=GpuSettings)
    train: Resources = field(default_factory=lambda: Resources(request_gpus=1, request_memory="16GB",
                                                                request_disk="20GB"))
    light: Resources = field(default_factory=Resources)
    dask_worker: Resources = field(default_factory=lambda: Resources(request_memory="4GB", request_disk="4GB"))

    def __post_init__(self) -> None:
        if self.universe not in ("vanilla", "container", "docker"):
            raise ValueError(f"universe must be vanilla, container or docker (jobs transfer their files), "
                             f"got {self.universe!r}")
        if self.checkpoint_exit_minutes is not None and not self.checkpoint_exit_minutes > 0:
            raise ValueError(f"checkpoint_exit_minutes must be > 0 or null, got {self.checkpoint_exit_minutes}")
        for key in self.environment:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"environment: {key!r} is not a variable name")

    @property
    def has_image(self) -> bool:
        """The jobs run in a container image (which holds hepscale)."""
        image_keys = {"+singularityimage", "my.singularityimage", "+apptainerimage", "my.apptainerimage"}
        return bool(self.container_image) or any(k.lower() in image_keys for k in self.extra)


def load_site(name_or_path: str | os.PathLike[str] | None) -> SiteProfile:
    """Load a site profile from a YAML path, or by name (None: defaults).

    A name (no suffix) is ``configs/sites/NAME.yaml`` of the working directory where it is
    there, else the profile of that name shipped with hepscale.

    Raises
    ------
    CondorError
        When no profile of that name exists.
    ConfigError
        On an unknown key or a bad value (the message names the file and the key).
    """
    from hepscale.config import load_config
    from hepscale.resources import project_file

    if name_or_path is None:
        return SiteProfile()
    path = Path(name_or_path)
    if not path.suffix:
        try:
            path = project_file(f"configs/sites/{path.name}.yaml")
        except FileNotFoundError:
            raise CondorError(f"site profile {name_or_path!r} not found in configs/sites/ or the package") from None
    return load_config(SiteProfile, path)
