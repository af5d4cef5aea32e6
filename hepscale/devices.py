"""The torch device of a ``--device`` option (``hepscale sample``, ``evaluate``, ``score``)."""

from __future__ import annotations

import torch

from hepscale.errors import ConfigError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device of a ``--device`` value: ``cpu``, ``cuda[:i]`` or ``auto`` (CUDA when available).

    Raises
    ------
    ConfigError
        For a value that is no torch device, or CUDA requested where it is not available.
    """
    if isinstance(device, str) and device.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device {str(device)!r} is no torch device (cpu, cuda, cuda:N or auto): {err}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: CUDA was requested but is not available "
                              "(torch.cuda.is_available() is False); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {str(device)!r}: there are {torch.cuda.device_count()} CUDA devices")
    elif dev.type != "cpu":
        raise ConfigError(f"device {str(device)!r}: hepscale runs on cpu or cuda")
    return dev
