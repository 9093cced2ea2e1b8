"""What a trained tokenizer directory holds, shared by both trainers.

    DIR/tokenizer.json          the HF `tokenizers` pipeline (the one file eval and training use)
    DIR/tokenizer_config.json   + special_tokens_map.json: so that
                                `PreTrainedTokenizerFast.from_pretrained(DIR)` knows bos/eos/pad/unk
    DIR/tokenizer_meta.json     how it was trained: vocab size, sample per language, temperature,
                                seed, input fingerprint, time, peak memory

Special tokens have fixed ids 0..3 (pad, bos, eos, unk) followed by `reserved` placeholders
(<|reserved_0|>...) so later stages (chat markers, FIM, language tags) can claim ids without
resizing the embedding matrix.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

CORE_SPECIALS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
META_FILE = "tokenizer_meta.json"
TOKENIZER_FILE = "tokenizer.json"

#: metadata keys that must match for an existing tokenizer to be reused (resumability)
IDENTITY_KEYS = ("kind", "vocab_size", "temperature", "seed", "input_fingerprint", "reserved_tokens", "options")


def special_tokens(reserved: int) -> list[str]:
    return [*CORE_SPECIALS.values(), *(f"<|reserved_{i}|>" for i in range(reserved))]


def peak_rss_mb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(r / (2**20 if sys.platform == "darwin" else 2**10), 1)


def write_dir(out_dir: str | Path, tokenizer, meta: dict) -> Path:
    """Write tokenizer.json, the transformers config files and the metadata; returns the json path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / TOKENIZER_FILE
    tmp = path.with_suffix(".json.tmp")
    tokenizer.save(str(tmp))
    os.replace(tmp, path)
    cfg = {
        **CORE_SPECIALS,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "clean_up_tokenization_spaces": False,  # decode must give back the exact text
        "model_max_length": 1_000_000_000,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps(CORE_SPECIALS, indent=2) + "\n")
    # metadata last: its presence marks a complete directory
    (out / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return path


def read_meta(out_dir: str | Path) -> dict | None:
    p = Path(out_dir) / META_FILE
    if not p.is_file() or not (Path(out_dir) / TOKENIZER_FILE).is_file():
        return None
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return None


def meta_matches(meta: dict | None, wanted: dict) -> bool:
    return meta is not None and all(meta.get(k) == wanted.get(k) for k in IDENTITY_KEYS)
