"""The data a generation study prepares from its jets: the token dataset and the SWD reference.

The token dataset (:func:`hepscale.tokens.tokenizer.tokenize_dataset`) is cached under its
settings hash; the reference of the SWD is the validation split of the token dataset (checked
token by token against ``val.bin``), unless ``data.reference`` names a jet dataset.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hepscale.study.config import StudyError

if TYPE_CHECKING:
    from hepscale.tasks.generation.study import GenerationStudy

__all__ = ["TOKENS_INFO", "prepare_tokens"]

logger = logging.getLogger(__name__)

#: the description of a token dataset (:func:`hepscale.tokens.tokenizer.tokenize_dataset`), written last
TOKENS_INFO = "tokenizer.json"


def prepare_tokens(study: GenerationStudy, jets_path: str, root: Path, paths: dict[str, str],
                   keys: dict[str, str]) -> None:
    """Tokenize the jets into ``paths["tokens"]`` unless up to date, and write the reference
    (the validation jets of the token split) unless ``data.reference`` names one."""
    from hepscale.jets.dataset import write_jets
    from hepscale.study.prepare import stamp_ok, write_stamp
    from hepscale.tokens.tokenizer import TokenizerConfig, tokenize_dataset

    d = study.data
    tokens_dir = root / paths["tokens"]
    if stamp_ok(tokens_dir, keys["tokens"], tokens_dir / TOKENS_INFO):
        logger.info("tokens: up to date (%s)", tokens_dir)
    else:
        tokenize_dataset(jets_path, tokens_dir, config=TokenizerConfig(**(d.tokenizer or {})))
        write_stamp(tokens_dir, keys["tokens"], {"jets": jets_path, "tokenizer": dict(d.tokenizer or {})})
    if not d.reference:
        ref_path = root / paths["reference"]
        if not ref_path.is_file():
            ref = _validation_jets(jets_path, tokens_dir)
            write_jets(ref_path, ref, metadata={"kind": "reference", "source": jets_path,
                                                "tokens": paths["tokens"], "split": "val"})
            logger.info("reference: %d validation jets -> %s", len(ref), ref_path)


def _validation_jets(jets_path: str, tokens_dir: Path) -> Any:
    """The jets of the validation split of ``tokens_dir``, checked token by token against ``val.bin``."""
    import numpy as np

    from hepscale.jets.dataset import read_jets
    from hepscale.tokens.tokenizer import Tokenizer, load_tokens, split_indices

    val, tok = load_tokens(tokens_dir, "val")
    info = json.loads((tokens_dir / TOKENS_INFO).read_text(encoding="utf-8"))
    cfg = tok.config
    jets = read_jets(jets_path)
    n = len(jets)
    if n != info["n_train_jets"] + info["n_val_jets"]:
        raise StudyError(f"{jets_path} holds {n} jets, the token split of {tokens_dir} "
                         f"{info['n_train_jets']} + {info['n_val_jets']}; re-run the preparation")
    ref = jets[split_indices(n, cfg)[1]]
    tokens, offsets = Tokenizer(cfg).encode_jets(ref)
    if not (np.array_equal(offsets, val.offsets) and np.array_equal(np.asarray(tokens), np.asarray(val.tokens))):
        raise StudyError(f"the validation jets of {jets_path} do not reproduce {tokens_dir}/val.bin")
    return ref
