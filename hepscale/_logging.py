"""Logging set-up for the command-line tools (the library itself never configures logging)."""

from __future__ import annotations

import logging


def configure_cli_logging(verbose: bool = False) -> None:
    """Warnings (or info with ``verbose``) from hepscale on stderr; dask's chatter kept to errors."""
    import distributed  # noqa: F401  (its import sets its own log levels; ours must come after)

    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "bokeh", "tornado"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
