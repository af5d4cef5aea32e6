from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from hepscale.config import ConfigError, apply_overrides, load_config, to_dict


@dataclass
class Inner:
    width: int = 8
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Outer:
    lr: float = 1e-3
    steps: int = 10
    mode: str = "fast"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)


def test_layering_defaults_file_overrides(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("lr: 3e-4\ninner:\n  width: 16\n")
    cfg = load_config(Outer, cfg_file, overrides=["steps=20", "inner.names=[x, y]"])
    assert cfg.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string; the float field converts it
    assert cfg.steps == 20
    assert cfg.inner.width == 16
    assert cfg.inner.names == ["x", "y"]
    assert cfg.mode == "fast"
    assert to_dict(cfg)["inner"] == {"width": 16, "names": ["x", "y"]}


def test_unknown_key_lists_valid_keys(tmp_path):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("learning_rate: 1\n")
    with pytest.raises(ConfigError, match=r"unknown key.*'learning_rate'.*valid keys are: flag, inner, lr, mode, steps"):
        load_config(Outer, cfg_file)
    with pytest.raises(ConfigError, match=r"unknown key 'inner.depth'.*names, width"):
        load_config(Outer, overrides=["inner.depth=3"])


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match=r"steps: expected an integer, got 'many'"):
        load_config(Outer, overrides=["steps=many"])
    with pytest.raises(ConfigError, match=r"flag: expected true or false"):
        load_config(Outer, overrides=["flag=3"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["novalue"])


def test_bad_yaml_names_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(Outer, bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "missing.yaml")
