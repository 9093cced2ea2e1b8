"""A directory of per-language KenLM models, as CCNet and BLOOM publish them or as
`babelmill quality-model train-lm` writes them.

    DIR/<lang>.arpa | <lang>.arpa.gz | .arpa.xz | .arpa.bz2   ARPA text (KenLM reads it compressed)
    DIR/<lang>.bin  | <lang>.arpa.bin | <lang>.klm             KenLM binary (build_binary; CCNet: en.arpa.bin)
    DIR/<lang>.sp.model                                        optional SentencePiece model (CCNet/BLOOM)
    DIR/<lang>.lm.json                                         optional sidecar: how the text was prepared

The language is the file name up to its first dot (as CCNet reads its directories). With
several model files for one language, a binary one wins (it loads in a fraction of the time).
Model paths are opened as files, never passed to a shell.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from babelmill.pipeline.quality_models.text import LmTokens, NormalizeMode
from babelmill.yamlconf import ConfigError

#: model suffixes, in order of preference
BINARY_SUFFIXES = ("arpa.bin", "bin", "klm")
ARPA_SUFFIXES = ("arpa", "arpa.gz", "arpa.xz", "arpa.bz2")
LM_SUFFIXES = (*BINARY_SUFFIXES, *ARPA_SUFFIXES)
SP_SUFFIX = "sp.model"
SIDECAR_SUFFIX = "lm.json"


class LmSidecar(BaseModel):
    """`<lang>.lm.json`: how the model's training text was prepared (the scorer does the same)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    tokens: LmTokens | None = None
    normalize: NormalizeMode | None = None
    unit: Literal["document", "line"] | None = None


@dataclass(frozen=True)
class LmFiles:
    lang: str
    model: Path
    sp_model: Path | None = None
    sidecar: Path | None = None

    def read_sidecar(self) -> LmSidecar:
        if self.sidecar is None:
            return LmSidecar()
        try:
            return LmSidecar.model_validate(json.loads(self.sidecar.read_text(encoding="utf-8")))
        except (OSError, ValueError, ValidationError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"{self.sidecar}: unreadable KenLM sidecar: {first}") from None


def _split(name: str) -> tuple[str, str]:
    lang, _, suffix = name.partition(".")
    return lang, suffix


def find_models(directory: str | Path, what: str = "perplexity") -> dict[str, LmFiles]:
    """lang -> its files; a missing directory is a ConfigError naming it."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{what}: KenLM model directory {d} not found (expected <lang>.arpa or <lang>.bin files; "
                          "train one with `babelmill quality-model train-lm` or see the README)")
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(d.iterdir()):
        if not p.is_file():
            continue
        lang, suffix = _split(p.name)
        if lang and suffix in (*LM_SUFFIXES, SP_SUFFIX, SIDECAR_SUFFIX):
            found.setdefault(lang, {})[suffix] = p
    out = {}
    for lang, files in found.items():
        model = next((files[s] for s in LM_SUFFIXES if s in files), None)
        if model is None:
            continue  # a SentencePiece model or sidecar alone is not a language model
        out[lang] = LmFiles(lang, model, files.get(SP_SUFFIX), files.get(SIDECAR_SUFFIX))
    return out


def _first_line(e: BaseException) -> str:
    msg = " ".join(str(e).split())
    # KenLM: "Cannot read model 'x' (lm/read_arpa.cc:65 in void lm::... threw FormatLoadException. first
    # non-empty line was ..."): keep what it says after the exception name
    for marker in ("Exception.", "Exception because"):
        if marker in msg:
            msg = msg.split(marker, 1)[1].strip()
            break
    return msg[:300]


def load_kenlm(path: Path, what: str = "perplexity", lazy: bool = False):
    """kenlm.Model for `path`, quietly; a file KenLM cannot read is a ConfigError naming it.
    `lazy`: a binary model is memory-mapped without reading it (a check of its header and
    size, fast for multi-GB CCNet models); an ARPA file is always parsed to its end."""
    import kenlm

    cfg = kenlm.Config()
    cfg.show_progress = False
    cfg.arpa_complain = kenlm.ARPALoadComplain.NONE
    if lazy:
        cfg.load_method = kenlm.LoadMethod.LAZY
    try:
        return kenlm.Model(str(path), cfg)
    except (OSError, RuntimeError) as e:
        raise ConfigError(f"{what}: cannot load KenLM model {path}: {_first_line(e)}") from None


def load_sentencepiece(path: Path, what: str = "perplexity"):
    import sentencepiece

    sp = sentencepiece.SentencePieceProcessor()
    try:
        sp.Load(str(path))
    except (OSError, RuntimeError) as e:
        raise ConfigError(f"{what}: cannot load SentencePiece model {path}: {_first_line(e)}") from None
    return sp
