"""What a generation study (``task: generation``, the default) has and checks beside the
sections every study has: ``data.tokenizer`` (the binning of
:class:`hepscale.tokens.tokenizer.TokenizerConfig`), ``data.reference`` (the jet dataset of the
SWD; None: the validation jets of the token split), and a grid that counts tokens
(``grid.tokens``, ``grid.unique_tokens``, ``grid.max_tokens``) over GPT sizes of
``configs/models.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hepscale.study.config import DataSection, GridSection, StudyConfig

if TYPE_CHECKING:
    from hepscale.tasks.spec import Checker

__all__ = ["GenerationData", "GenerationGrid", "GenerationStudy", "check_generation_study"]


@dataclass
class GenerationData(DataSection):
    """The data of a generation study: the source, ``tokenizer`` (fields of
    :class:`hepscale.tokens.tokenizer.TokenizerConfig`, None: the defaults) and ``reference``
    (the jet dataset of the SWD, None: the validation jets of the token split)."""

    tokenizer: dict[str, Any] | None = None
    reference: str | None = None


@dataclass
class GenerationGrid(GridSection):
    """The grid of a generation study: D in tokens seen (``tokens``), U in unique tokens
    (``unique_tokens``), the D cap ``max_tokens``."""

    tokens: list[int] | None = None
    unique_tokens: list[int | None] = field(default_factory=lambda: [None])
    max_tokens: int | None = None


@dataclass
class GenerationStudy(StudyConfig):
    """A generation study (``task: generation``)."""

    data: GenerationData = field(default_factory=GenerationData)
    grid: GenerationGrid = field(default_factory=GenerationGrid)


def check_generation_study(study: GenerationStudy, bad: Checker) -> None:
    """The tokenizer section (fields, types and ranges of the binning; an unknown key lists the
    valid ones) and enough samples for the SWD resamples."""
    from hepscale.config import from_dict
    from hepscale.tokens.tokenizer import TokenizerConfig

    from_dict(TokenizerConfig, study.data.tokenizer or {}, where=f"{getattr(bad, 'source', 'study')}: data.tokenizer")
    e = study.evaluation
    if e.enabled and e.samples < e.n:
        raise bad("evaluation.samples", f"must be >= evaluation.n ({e.n}) for the SWD resamples, got {e.samples}")
