from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import awkward as ak
from _study_setup import tiny_dict, write_study

from hepscale.study import load_study, prepare
from processors.jets import JetProcessor


def test_prepare_from_generated_events_is_cached(tmp_path: Path, generated_samples: dict[str, Path],
                                                 dask_client: Any) -> None:
    data = tiny_dict(tmp_path / "out", Path("unused"))
    data["data"] = {"events": [str(p) for p in generated_samples.values()],
                    "process": {"chunksize": 200},
                    "tokenizer": {"n_pt": 8, "n_eta": 4, "n_phi": 4, "max_constituents": 32, "val_fraction": 0.3}}
    study = load_study(write_study(tmp_path / "s.yaml", data))
    folder = tmp_path / "out"
    paths = prepare(study, folder, client=dask_client, processor_factory=JetProcessor)
    jets = folder / paths["jets"]
    tokens = folder / paths["tokens"]
    info = json.loads((tokens / "tokenizer.json").read_text())
    ref = ak.from_parquet(folder / paths["reference"])
    assert len(ref) == info["n_val_jets"] > 0
    assert info["n_train_jets"] + info["n_val_jets"] == len(ak.from_parquet(jets))
    stamps = {p: p.stat().st_mtime_ns for p in (jets, tokens / "train.bin", folder / paths["reference"])}
    prepare(study, folder, client=dask_client, processor_factory=JetProcessor)  # everything is cached
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    # another binning: the jets are reused, new tokens and reference beside the old ones
    data["data"]["tokenizer"]["n_pt"] = 6
    other = prepare(load_study(write_study(tmp_path / "t.yaml", data)), folder, client=dask_client, processor_factory=JetProcessor)
    assert other["tokens"] != paths["tokens"] and (folder / other["tokens"] / "train.bin").is_file()
    assert jets.stat().st_mtime_ns == stamps[jets]
