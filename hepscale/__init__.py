"""hepscale: neural scaling-law studies of jet machine learning.

The sub-packages follow the data path (see ``ARCHITECTURE.md``):

``events`` (Pythia 8, JetClass / Aspen readers) -> ``jets`` (clustering, observables, truth,
the jet dataset, processing on dask) -> ``tokens`` (tokenizer) -> ``models`` (GPT, size table,
sampling) -> ``train`` (one trainer, tasks, budgets) -> ``runs`` (run folder, result schema,
runs table) -> ``metrics`` (SWD, JetNet, tagging) -> ``fit`` (scaling laws) -> ``study`` (grids,
local executor, HTCondor DAG) and ``plotting`` (CMS-style figures). The tools are thin
command modules (``hepscale.generate``, ``hepscale.process``, ...; ``hepscale.cli``).

Nothing is configured or loaded at import: the names below are imported when first used.
"""

from __future__ import annotations

from hepscale._lazy import lazy_exports
from hepscale._version import __version__, code_version

_EXPORTS = {
    # errors and exit codes
    "HepscaleError": "hepscale.errors",
    "ConfigError": "hepscale.errors",
    "DataError": "hepscale.errors",
    # configuration
    "load_config": "hepscale.config",
    # events and jets
    "GeneratorConfig": "hepscale.events.pythia",
    "generate": "hepscale.events.pythia",
    "convert": "hepscale.jets.readers",
    "JetProcessorConfig": "hepscale.jets.config",
    "process_files": "hepscale.jets.processing",
    "dask_client": "hepscale.condor.dask",
    "read_jets": "hepscale.jets.dataset",
    "write_jets": "hepscale.jets.dataset",
    "jet_observables": "hepscale.jets.observables",
    # tokens, models, training
    "Tokenizer": "hepscale.tokens.tokenizer",
    "TokenizerConfig": "hepscale.tokens.tokenizer",
    "tokenize_dataset": "hepscale.tokens.tokenizer",
    "GPTConfig": "hepscale.models.sizes",
    "size_config": "hepscale.models.sizes",
    "sample_run": "hepscale.tasks.generation.sampling",
    "TrainConfig": "hepscale.train.config",
    "load_run_config": "hepscale.train.config",
    "run_id": "hepscale.train.config",
    # runs, metrics, fits, studies
    "RunFolder": "hepscale.runs.folder",
    "RunResult": "hepscale.runs.result",
    "gather_runs": "hepscale.runs.table",
    "read_runs_table": "hepscale.runs.table",
    "evaluate_run": "hepscale.tasks.generation.evaluate",
    "load_study": "hepscale.study",
    "run_study": "hepscale.study",
}

__all__ = ["__version__", "code_version", *sorted(_EXPORTS)]
__getattr__, _dir = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
