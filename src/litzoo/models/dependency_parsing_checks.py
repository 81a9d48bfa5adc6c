"""Checks of the parser model configs that need neither torch nor transformers.

`conf/model/biaffine*.yaml` name these with `check:`; the platform runs them during validation,
so `model.decoder=greedy` or `model.features=[pos]` stops within a second, before anything heavy
is imported, instead of after the data has been read and the Trainer built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litzoo.errors import ConfigError

DECODERS = ("mst", "eisner")
FEATURES = ("chars", "upos", "xpos")


def check_parser(model: Mapping[str, Any]) -> None:
    """`model.decoder` is mst or eisner; `model.features` are among chars, upos, xpos."""
    decoder = model.get("decoder", "mst")
    if decoder not in DECODERS:
        raise ConfigError(
            f"model.decoder={decoder!r} is unknown; use mst (Chu-Liu/Edmonds, any tree) or eisner "
            "(projective trees only). Both always return a tree with one root."
        )
    features = list(model.get("features") or [])
    unknown = [f for f in features if f not in FEATURES]
    if unknown:
        raise ConfigError(
            f"model.features={features}: {', '.join(map(str, unknown))} unknown; choose from "
            f"{', '.join(FEATURES)} (characters, the file's UPOS, XPOS columns)."
        )


def check_transformer_parser(model: Mapping[str, Any]) -> None:
    """The parser's settings, and `model.pretrained` on this machine."""
    from litzoo.models.text_checks import check_hf_pretrained

    check_parser(model)
    check_hf_pretrained(model)
