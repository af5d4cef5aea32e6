"""The tagging dataset: class selection, balance, a stratified seeded split by jet, unique-jet subsets."""

from __future__ import annotations

import json
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
from _synthetic import random_jets

from hepscale.config import ConfigError
from hepscale.jets.readers import convert
from hepscale.jets.dataset import LABELS, read_jets, read_metadata, write_jets
from hepscale.tasks.tagging.data import (
    SPLITS,
    ClassSpec,
    TaggingDataError,
    class_map,
    load_split,
    prepare_tagging_data,
    read_info,
    unique_subset,
)
from hepscale.tasks.tagging.features import build_inputs

#: jets per label of the synthetic file, written sorted by label (as files sorted by process are)
COUNTS = {LABELS["QCD"]: 301, LABELS["Wqq"]: 95, LABELS["Tbqq"]: 152, -1: 12}


@pytest.fixture(scope="module")
def sorted_jets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Jets sorted by label; ``event`` numbers every jet of the file (its identity in the splits)."""
    n = sum(COUNTS.values())
    jets = random_jets(n, seed=5, n_max=12)
    labels = np.concatenate([np.full(c, label, dtype=np.int64) for label, c in COUNTS.items()])
    jets = ak.with_field(jets, labels, "label")
    jets = ak.with_field(jets, np.arange(n, dtype=np.int64), "event")
    path = tmp_path_factory.mktemp("sorted") / "jets.parquet"
    write_jets(path, jets)
    return path


def _splits(folder: Path) -> dict[str, ak.Array]:
    return {s: load_split(folder, s) for s in SPLITS}


def test_balanced_split_is_a_stratified_partition(sorted_jets: Path, tmp_path: Path) -> None:
    out = prepare_tagging_data(sorted_jets, tmp_path / "d", classes=("QCD", "Tbqq", "Wqq"), seed=4)
    info, splits = read_info(out), _splits(out)
    assert info["classes"] == ["QCD", "Tbqq", "Wqq"] and info["class_labels"] == [0, 8, 7]
    assert info["label_to_class"] == {"0": 0, "8": 1, "7": 2}
    # 95 jets per class (the smallest): round(95 * 0.6) = 57 train, round(95 * 0.8) - 57 = 19 val, 19 test
    for split, n in (("train", 57), ("val", 19), ("test", 19)):
        classes = ak.to_numpy(splits[split].class_index)
        assert np.bincount(classes, minlength=3).tolist() == [n, n, n], split
        assert info["counts"][split] == {"QCD": n, "Tbqq": n, "Wqq": n} and info["n_jets"][split] == 3 * n
        # class_index is the position of the jet's label among the classes
        labels = ak.to_numpy(splits[split].label)
        assert np.array_equal(labels, np.array([0, 8, 7])[classes])
    assert info["dropped"] == {"not_in_classes": {"unknown": 12}, "balance": {"QCD": 206, "Tbqq": 57, "Wqq": 0}}
    assert info["input_counts"] == {"unknown": 12, "QCD": 301, "Wqq": 95, "Tbqq": 152}
    # a partition: no jet twice, every input jet either in a split or counted as dropped
    ids = np.concatenate([ak.to_numpy(s.event) for s in splits.values()])
    assert len(np.unique(ids)) == len(ids)
    dropped = sum(sum(d.values()) for d in info["dropped"].values())
    assert len(ids) + dropped == info["n_input"] == sum(COUNTS.values())
    # the jets are the input's own records, the same schema plus class_index
    source = read_jets(sorted_jets)
    train = splits["train"]
    assert train.fields == source.fields + ["class_index"]
    assert ak.to_list(train[["pt", "mass", "label"]][:20]) == ak.to_list(
        source[ak.to_numpy(train.event)[:20]][["pt", "mass", "label"]])
    assert ak.to_list(train.constituents[:3]) == ak.to_list(source.constituents[ak.to_numpy(train.event)[:3]])
    assert info["seed"] == 4 and info["fractions"] == [0.6, 0.2, 0.2] and info["balance"] is True
    assert info["input"]["path"] == str(sorted_jets.resolve())
    assert info["input"]["files"][0]["size"] == sorted_jets.stat().st_size
    assert info["constituent_fields"] == source.constituents.fields and "git_commit" in info["code_version"]
    assert read_metadata(out / "train.parquet")["tagging_split"] == "train"


def test_unbalanced_split_keeps_the_class_proportions(sorted_jets: Path, tmp_path: Path) -> None:
    out = prepare_tagging_data(sorted_jets, tmp_path / "d", classes=ClassSpec(("QCD", "Tbqq")), balance=False,
                               fractions=(0.5, 0.3, 0.2), seed=2)
    info, splits = read_info(out), _splits(out)
    totals = {"QCD": 301, "Tbqq": 152}
    for split, frac in zip(SPLITS, (0.5, 0.3, 0.2)):
        counts = np.bincount(ak.to_numpy(splits[split].class_index), minlength=2)
        for i, name in enumerate(("QCD", "Tbqq")):
            assert abs(counts[i] - frac * totals[name]) <= 1, (split, name)
        assert counts.tolist() == [info["counts"][split]["QCD"], info["counts"][split]["Tbqq"]]
    assert {c: sum(info["counts"][s][c] for s in SPLITS) for c in totals} == totals
    assert info["dropped"] == {"not_in_classes": {"Wqq": 95, "unknown": 12}, "balance": {}}


def test_splits_are_seeded_and_never_in_file_order(sorted_jets: Path, tmp_path: Path) -> None:
    a = _splits(prepare_tagging_data(sorted_jets, tmp_path / "a", classes=("QCD", "Tbqq"), seed=7))
    b = _splits(prepare_tagging_data(sorted_jets, tmp_path / "b", classes=("QCD", "Tbqq"), seed=7))
    c = _splits(prepare_tagging_data(sorted_jets, tmp_path / "c", classes=("QCD", "Tbqq"), seed=8))
    for split in SPLITS:
        assert a[split].event.to_list() == b[split].event.to_list()
    assert a["train"].event.to_list() != c["train"].event.to_list()
    assert set(a["train"].event.to_list()) != set(c["train"].event.to_list())
    # the input is sorted by label (and event): the splits are shuffled
    for split in SPLITS:
        classes = ak.to_numpy(a[split].class_index)
        changes = int(np.count_nonzero(np.diff(classes)))
        n = len(classes)
        assert changes > 0.3 * n  # a random order of two equal classes changes class about n/2 times
        events = ak.to_numpy(a[split].event)
        assert abs(np.corrcoef(np.arange(n), events)[0, 1]) < 0.3
    # rewriting the folder gives the same dataset
    again = _splits(prepare_tagging_data(sorted_jets, tmp_path / "a", classes=("QCD", "Tbqq"), seed=7))
    assert again["val"].event.to_list() == a["val"].event.to_list()


@pytest.mark.parametrize("labels", ["binary", "three", "unbalanced"])
def test_unique_subsets_are_stratified_nested_and_seeded(labels: str) -> None:
    rng = np.random.default_rng(0)
    y = {"binary": rng.permutation(np.repeat([0, 1], 300)), "three": rng.permutation(np.repeat([0, 1, 2], 200)),
         "unbalanced": rng.permutation(np.repeat([0, 1, 2], [400, 150, 50]))}[labels]
    n_classes = int(y.max()) + 1
    share = np.bincount(y) / len(y)
    previous: set[int] = set()
    for u in (1, 7, 50, 123, 301, 599, 600):
        idx = unique_subset(y, u, seed=3)
        assert idx.dtype == np.int64 and len(idx) == u == len(np.unique(idx))
        assert np.all(np.diff(idx) > 0) and idx[0] >= 0 and idx[-1] < len(y)
        counts = np.bincount(y[idx], minlength=n_classes)
        bound = 0.5 + share * (n_classes - 2) / 2 + 1e-9
        assert np.all(np.abs(counts - u * share) <= bound), (u, counts, u * share)
        assert previous <= set(idx.tolist())  # a larger U contains a smaller one
        previous = set(idx.tolist())
    assert np.array_equal(unique_subset(y, 123, seed=3), unique_subset(y, 123, seed=3))
    assert not np.array_equal(unique_subset(y, 123, seed=3), unique_subset(y, 123, seed=4))
    assert not np.array_equal(unique_subset(y, 123, seed=3), np.arange(123))  # not the first rows
    assert np.array_equal(unique_subset(y, None, seed=3), np.arange(len(y)))


def test_unique_subset_of_a_number_and_its_errors() -> None:
    idx = unique_subset(1000, 100, seed=1)
    assert len(np.unique(idx)) == 100 and np.all(np.diff(idx) > 0) and idx[-1] < 1000
    assert set(idx.tolist()) <= set(unique_subset(1000, 400, seed=1).tolist())
    assert not np.array_equal(idx, np.arange(100))
    assert np.array_equal(unique_subset(np.int64(5), None, seed=1), np.arange(5))
    with pytest.raises(ConfigError, match=r"data.unique_jets=1001 exceeds the 1000 jets of the training split"):
        unique_subset(1000, 1001, seed=1)
    with pytest.raises(ConfigError, match="data.unique_jets=11 exceeds the 10 jets"):
        unique_subset(np.zeros(10, dtype=np.int64), 11, seed=1)
    with pytest.raises(ConfigError, match="data.unique_jets must be at least 1"):
        unique_subset(10, 0, seed=1)


def test_class_map_errors() -> None:
    assert class_map(("QCD", "Tbqq"), [0, 8, 7, -1]) == {0: 0, 8: 1}
    assert class_map(ClassSpec(("Tbqq", "Hbb", "QCD")), np.array([0, 1, 8])) == {8: 0, 1: 1, 0: 2}
    with pytest.raises(ConfigError, match=r"at least two classes, got \['QCD'\]"):
        class_map(("QCD",), [0, 8])
    with pytest.raises(ConfigError, match="unknown class 'Top'"):
        class_map(("QCD", "Top"), [0, 8])
    with pytest.raises(ConfigError, match=r"\['QCD'\] given more than once"):
        class_map(("QCD", "QCD"), [0, 8])
    with pytest.raises(TaggingDataError, match=r"f.parquet: no jets of class\(es\) \['Hbb'\] \(the dataset holds "
                                               r"\['QCD', 'Tbqq'\]\)"):
        class_map(("QCD", "Hbb"), [0, 8], source="f.parquet")
    with pytest.raises(TaggingDataError, match="'jetclass2' scheme"):
        class_map(("QCD", "Tbqq"), [0, 8], label_scheme="jetclass2")
    assert class_map(("17", "3"), [3, 17, 40], label_scheme="jetclass2") == {17: 0, 3: 1}


def test_bad_requests_are_named(sorted_jets: Path, tmp_path: Path) -> None:
    with pytest.raises(TaggingDataError, match=r"jets.parquet: no jets of class\(es\) \['Hbb'\]"):
        prepare_tagging_data(sorted_jets, tmp_path / "a", classes=("QCD", "Hbb"))
    with pytest.raises(ConfigError, match="at least two classes"):
        prepare_tagging_data(sorted_jets, tmp_path / "b", classes=("QCD",))
    with pytest.raises(ConfigError, match=r"fractions: must sum to 1, got \[0.6, 0.2, 0.1\]"):
        prepare_tagging_data(sorted_jets, tmp_path / "c", classes=("QCD", "Tbqq"), fractions=(0.6, 0.2, 0.1))
    with pytest.raises(ConfigError, match="fractions: every split needs a positive fraction"):
        prepare_tagging_data(sorted_jets, tmp_path / "c", classes=("QCD", "Tbqq"), fractions=(0.8, 0.2, 0.0))
    with pytest.raises(TaggingDataError, match=r"the test split would hold no jets of class 'QCD' \(95 jets of it "
                                               r"after balancing"):
        prepare_tagging_data(sorted_jets, tmp_path / "d", classes=("QCD", "Wqq"), fractions=(0.990, 0.005, 0.005))
    assert not (tmp_path / "d" / "info.json").exists()
    # a dataset of one class: any second class is absent
    single = tmp_path / "single.parquet"
    jets = read_jets(sorted_jets)
    write_jets(single, jets[ak.to_numpy(jets.label) == 0])
    with pytest.raises(TaggingDataError, match=r"single.parquet: no jets of class\(es\) \['Tbqq'\] \(the dataset "
                                               r"holds \['QCD'\]\)"):
        prepare_tagging_data(single, tmp_path / "e", classes=("QCD", "Tbqq"))
    # reading what is not a finished tagging dataset
    with pytest.raises(TaggingDataError, match="no info.json: not a finished tagging dataset"):
        load_split(tmp_path / "e", "train")
    with pytest.raises(TaggingDataError, match="no info.json"):
        read_info(tmp_path)
    out = prepare_tagging_data(sorted_jets, tmp_path / "f", classes=("QCD", "Tbqq"))
    with pytest.raises(ValueError, match=r"split must be one of \['train', 'val', 'test'\], got 'valid'"):
        load_split(out, "valid")
    (out / "val.parquet").unlink()
    with pytest.raises(TaggingDataError, match="the val split of the tagging dataset"):
        load_split(out, "val")


def test_jetclass2_integer_classes(jetclass_file: Path, tmp_path: Path) -> None:
    """JetClass-II's integer labels are classes by number; JetClass-I names are refused for it."""
    jets_path = tmp_path / "jc.parquet"
    convert([jetclass_file], jets_path)
    with pytest.raises(TaggingDataError, match="'jetclass2' scheme"):
        prepare_tagging_data(jets_path, tmp_path / "x", classes=("QCD", "Tbqq"))
    out = prepare_tagging_data(jets_path, tmp_path / "d", classes=("187", "130"), fractions=(0.5, 0.25, 0.25))
    info = read_info(out)
    assert info["input_counts"]["187"] == 11 and info["input_counts"]["130"] == 6
    assert info["n_jets"] == {"train": 6, "val": 2, "test": 4} and info["dropped"]["balance"] == {"187": 5, "130": 0}
    assert sum(info["dropped"]["not_in_classes"].values()) == 100 - 17
    test = load_split(out, "test")
    inputs = build_inputs(test, "full", 32)
    assert np.array_equal(inputs.labels, ak.to_numpy(test.class_index)) and inputs.x.shape == (4, 32, 17)


def test_generated_top_and_qcd_jets(processed_samples: Path, tmp_path: Path) -> None:
    """Top vs QCD from the generated samples: the counts add up to the input's labels."""
    src = processed_samples / "jets.parquet"
    labels = ak.to_numpy(read_jets(src, columns=["label"]).label)
    out = prepare_tagging_data(src, tmp_path / "d", classes=("QCD", "Tbqq"), seed=3)
    info = read_info(out)
    n_qcd, n_top = int((labels == 0).sum()), int((labels == 8).sum())
    per_class = min(n_qcd, n_top)
    assert sum(info["n_jets"].values()) == 2 * per_class
    assert info["dropped"]["balance"] == {"QCD": n_qcd - per_class, "Tbqq": n_top - per_class}
    assert sum(info["dropped"]["not_in_classes"].values()) == len(labels) - n_qcd - n_top
    assert json.loads((out / "info.json").read_text()) == info
    train = load_split(out, "train")
    assert set(train.source.to_list()) == {"qcd.root", "ttbar.root"}
    assert np.array_equal(ak.to_numpy(train.label)[ak.to_numpy(train.class_index) == 1], np.full(
        info["counts"]["train"]["Tbqq"], 8))
