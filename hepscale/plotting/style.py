"""CMS-style figures with mplhep: style context, experiment label, PDF + PNG output.

Nothing is changed globally at import; use :func:`cms_style` as a context manager.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["cms_style", "cms_label", "save_figure", "ratio_axes", "size_colours"]


@contextlib.contextmanager
def cms_style() -> Iterator[None]:
    """Matplotlib (Agg backend) with the mplhep CMS style, for the duration of the block."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mplhep

    with plt.style.context(mplhep.style.CMS):
        yield


def size_colours(sizes: Sequence[tuple[str, float]]) -> dict[str, tuple[Any, str]]:
    """One colour of the viridis map per model size (``(name, N)`` pairs, smallest first) and its
    legend text ``"name (N = ...)"``: the colours of every scaling figure."""
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("viridis")
    last = max(1, len(sizes) - 1)
    return {str(m): (cmap(0.9 * i / last), f"{m} (N = {n:.2g})") for i, (m, n) in enumerate(sizes)}


def cms_label(
    ax: Any,
    *,
    label: str = "Simulation",
    com: float = 13,
    rlabel: str | None = None,
    loc: int = 0,
    fontsize: float | None = None,
) -> None:
    """Draw the experiment label on ``ax``, following the data.

    Parameters
    ----------
    label
        Text after "CMS": ``"Simulation"``, ``"Simulation Preliminary"``, ``"Open Data"``, ...
        A label starting with ``"Pythia"`` (jets generated with the embedded Pythia 8, no detector)
        names no experiment: it draws "<label> Simulation" instead of "CMS ...".
    com
        Centre-of-mass energy in TeV, shown on the right as ``"(13 TeV)"`` unless ``rlabel`` is given.
    """
    import mplhep

    if label.startswith("Pythia"):
        kw: dict[str, Any] = {"rlabel": rlabel} if rlabel is not None else {"com": com}
        mplhep.label.exp_label(exp=label, data=False, ax=ax, loc=loc, **kw)  # data=False adds "Simulation"
        return

    simulation = label.startswith("Simulation")
    text = label[len("Simulation"):].strip() if simulation else label
    kwargs: dict[str, Any] = {"ax": ax, "text": text, "data": not simulation, "loc": loc}
    if fontsize is not None:
        kwargs["fontsize"] = fontsize
    if rlabel is not None:
        kwargs["rlabel"] = rlabel
    else:
        kwargs["com"] = com
    mplhep.cms.label(**kwargs)


def ratio_axes(figsize: tuple[float, float] = (10, 10)) -> tuple[Any, Any, Any]:
    """A figure with a main panel and a ratio panel below it sharing the x axis."""
    import matplotlib.pyplot as plt

    fig, (ax, rax) = plt.subplots(
        2, 1, figsize=figsize, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.05}, sharex=True
    )
    return fig, ax, rax


def save_figure(fig: Any, path: str | os.PathLike[str], *, formats: tuple[str, ...] = ("pdf", "png")) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (written atomically); close it.

    Returns the paths written.
    """
    import matplotlib.pyplot as plt

    from hepscale._io import atomic_path

    base = Path(path)
    if base.suffix.lstrip(".") in formats:
        base = base.with_suffix("")
    written = []
    for fmt in formats:
        out = base.with_name(f"{base.name}.{fmt}")
        with atomic_path(out, suffix=f".{fmt}") as tmp:
            fig.savefig(tmp, format=fmt, bbox_inches="tight", dpi=150 if fmt == "png" else None)
        written.append(out)
    plt.close(fig)
    return written
