"""The learning-rate schedule (:mod:`hepscale.train.optim`)."""

from __future__ import annotations

import pytest

from hepscale.train.optim import lr_at


def test_lr_schedule() -> None:
    kw = {"lr": 1.0, "min_lr": 0.1, "warmup_steps": 10, "total_steps": 110}
    assert lr_at(0, **kw) == pytest.approx(0.1)
    assert lr_at(9, **kw) == pytest.approx(1.0)
    assert lr_at(60, **kw) == pytest.approx(0.55)  # half way through the cosine
    assert lr_at(110, **kw) == pytest.approx(0.1)
    assert lr_at(109, **kw) > 0.1
