"""Tokenizer fairness on parallel text: what the same content costs in each language.

Input: a directory of `<code>.txt` files with aligned lines (line i is the same sentence in
every file) that includes the reference language (English). Per language:

  tokens_per_char   tokens / characters (NFC). Comparable within a language across tokenizers.
  tokens_per_word   tokens / whitespace-separated words, only for languages the registry marks
                    space_delimited (for zh, ja, th, lo, km, my "words" between spaces are
                    phrases or sentences, so the figure would be meaningless: null).
  bytes_fallback_rate
                    share of the language's tokens whose byte string is not valid UTF-8 on its
                    own, i.e. tokens holding only part of a character: a raw byte of a multi-byte
                    character (byte-level BPE base symbols above 0x7F, SentencePiece <0xNN>
                    byte-fallback pieces) or a merge that starts or ends inside a character.
                    Zero for ASCII-only text by construction; high values mean the vocabulary has
                    no room for the script and its text is spelled out byte by byte.
  parity            tokens(lang) / tokens(English) summed over the same aligned lines: how much
                    more a user of `lang` pays (context length, compute, API price) for the same
                    content. 1.0 is parity; Petrov et al. 2023 ("Language Model Tokenizers
                    Introduce Unfairness Between Languages") report up to ~15x for byte-level BPE.
  roundtrip_errors  lines where decode(encode(x)) != NFC(x) (should be 0).

Summary over the non-reference languages: worst (max) parity and which language, mean, std
(population), median. Vocabulary allocation: share of vocabulary entries (specials excluded)
by the dominant Unicode script of their decoded characters (babelmill.unicode_scripts), with "Zyyy"
for digits/punctuation/space-only entries and "bytes" for entries that are partial characters.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from babelmill.errors import BabelmillError
from babelmill.unicode_scripts import dominant_scripts

REFERENCE = "en"
PARTIAL = "bytes"
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class ParallelDataError(BabelmillError, ValueError):
    pass


# -- loading -------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _load_cached(path: str, mtime: float) -> Tokenizer:
    return Tokenizer.from_file(path)


def load(tokenizer) -> Tokenizer:
    """A `tokenizers.Tokenizer` from a tokenizer.json path, its directory, or an instance."""
    if isinstance(tokenizer, Tokenizer):
        return tokenizer
    p = Path(tokenizer)
    if p.is_dir():
        p = p / "tokenizer.json"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: tokenizer file not found")
    return _load_cached(str(p.resolve()), p.stat().st_mtime)


def count_tokens(texts: list[str], tokenizer_json, batch_size: int = 1024) -> list[int]:
    """Token count of each text (no special tokens), batch-encoded: the proxy-token measure the
    balancing stage uses to express language budgets in tokens rather than characters."""
    tok = load(tokenizer_json)
    out: list[int] = []
    for i in range(0, len(texts), batch_size):
        out.extend(len(e.ids) for e in tok.encode_batch(texts[i : i + batch_size], add_special_tokens=False))
    return out


# -- token bytes ---------------------------------------------------------------------------
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by ByteLevel."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


_BYTE_DECODER = {c: b for b, c in _bytes_to_unicode().items()}


def _is_byte_level(tok: Tokenizer) -> bool:
    return '"ByteLevel"' in json.dumps(json.loads(tok.to_str()).get("decoder"))


def token_bytes(tok: Tokenizer) -> list[bytes | None]:
    """The bytes each vocabulary id stands for (None for special/added tokens). Handles
    byte-level BPE vocabularies and SentencePiece-style ones (▁ for space, <0xNN> bytes)."""
    vocab = tok.get_vocab(with_added_tokens=False)
    specials = {t.content for t in tok.get_added_tokens_decoder().values()}
    out: list[bytes | None] = [None] * tok.get_vocab_size(with_added_tokens=True)
    byte_level = _is_byte_level(tok)
    for piece, i in vocab.items():
        if piece in specials:
            continue
        if byte_level:
            out[i] = bytes(_BYTE_DECODER[c] for c in piece)
        elif m := _BYTE_PIECE.match(piece):
            out[i] = bytes([int(m.group(1), 16)])
        else:
            out[i] = piece.replace("▁", " ").encode()
    return out


def _is_partial(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def partial_mask(tok: Tokenizer) -> np.ndarray:
    return np.array([b is not None and _is_partial(b) for b in token_bytes(tok)], dtype=bool)


def vocab_by_script(tok: Tokenizer) -> dict[str, float]:
    """Share of (non-special) vocabulary entries per dominant script, largest first."""
    strings, partial = [], 0
    for b in token_bytes(tok):
        if b is None:
            continue
        if _is_partial(b):
            partial += 1
        else:
            strings.append(b.decode("utf-8"))
    labels = dominant_scripts(strings, max_chars=64)
    counts: dict[str, int] = {}
    for s in labels:
        counts[s] = counts.get(s, 0) + 1
    if partial:
        counts[PARTIAL] = partial
    total = sum(counts.values()) or 1
    return {k: v / total for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


# -- parallel data -------------------------------------------------------------------------
def read_parallel(par_dir: str | Path, reference: str = REFERENCE) -> dict[str, list[str]]:
    """{code: lines} for every <code>.txt in par_dir; all must align with the reference file."""
    d = Path(par_dir)
    if not d.is_dir():
        raise ParallelDataError(f"{d}: parallel directory not found")
    files = sorted(d.glob("*.txt"))
    ref_path = d / f"{reference}.txt"
    if not ref_path.is_file():
        raise ParallelDataError(f"{ref_path}: reference language file missing (parity is measured against it)")
    data: dict[str, list[str]] = {}
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise ParallelDataError(f"{f}: not valid UTF-8 ({e})") from None
        data[f.stem] = [unicodedata.normalize("NFC", line) for line in text.rstrip("\n").split("\n")]
    n_ref = len(data[reference])
    for lang, lines in data.items():
        if len(lines) != n_ref:
            raise ParallelDataError(
                f"{d / (lang + '.txt')} has {len(lines)} lines but {ref_path} has {n_ref}: "
                "parallel files must be aligned line by line"
            )
        empty = [i + 1 for i, line in enumerate(lines) if not line.strip()]
        if empty:
            raise ParallelDataError(f"{d / (lang + '.txt')}: empty line(s) {empty[:5]} (alignment would be ambiguous)")
    return data


# -- evaluation ----------------------------------------------------------------------------
def _summary(per_lang: dict[str, dict], reference: str) -> dict:
    parities = {lang: r["parity"] for lang, r in per_lang.items() if lang != reference}
    if not parities:
        return {}
    vals = list(parities.values())
    worst = max(parities, key=parities.get)
    best = min(parities, key=parities.get)
    return {
        "languages": len(vals),
        "worst_parity": vals and parities[worst],
        "worst_language": worst,
        "best_parity": parities[best],
        "best_language": best,
        "mean_parity": statistics.fmean(vals),
        "median_parity": statistics.median(vals),
        "std_parity": statistics.pstdev(vals),
        "mean_bytes_fallback_rate": statistics.fmean(r["bytes_fallback_rate"] for r in per_lang.values()),
        "roundtrip_errors": sum(r["roundtrip_errors"] for r in per_lang.values()),
    }


def evaluate(tokenizer, par_dir: str | Path, languages: str | None = None, reference: str = REFERENCE,
             name: str | None = None) -> dict:
    """Per-language fairness figures, summary and vocabulary allocation (see module doc)."""
    from babelmill.languages import load_registry

    reg = load_registry(languages)
    tok = load(tokenizer)
    partial = partial_mask(tok)
    data = read_parallel(par_dir, reference)
    per_lang: dict[str, dict] = {}
    for lang, lines in data.items():
        enc = tok.encode_batch(lines, add_special_tokens=False)
        ids = np.fromiter((i for e in enc for i in e.ids), dtype=np.int64)
        n_tok = int(ids.size)
        n_chars = sum(map(len, lines))
        spaced = reg.is_space_delimited(lang) if lang in reg else True
        n_words = sum(len(line.split()) for line in lines) if spaced else None
        bad = [i for i, e in enumerate(enc) if tok.decode(e.ids, skip_special_tokens=False) != lines[i]]
        per_lang[lang] = {
            "lines": len(lines),
            "chars": n_chars,
            "bytes": sum(len(line.encode()) for line in lines),
            "words": n_words,
            "tokens": n_tok,
            "tokens_per_char": n_tok / n_chars if n_chars else 0.0,
            "tokens_per_word": (n_tok / n_words) if n_words else None,
            "bytes_fallback_rate": float(partial[ids].mean()) if n_tok else 0.0,
            "roundtrip_errors": len(bad),
            "known_language": lang in reg,
        }
        if bad:
            per_lang[lang]["roundtrip_example_line"] = bad[0] + 1
    ref_tokens = per_lang[reference]["tokens"]
    for r in per_lang.values():
        r["parity"] = r["tokens"] / ref_tokens if ref_tokens else float("nan")
    path = tokenizer if not isinstance(tokenizer, Tokenizer) else None
    return {
        "name": name or (Path(path).parent.name if path and Path(path).is_file() else str(path or "tokenizer")),
        "tokenizer": str(path) if path else None,
        "vocab_size": tok.get_vocab_size(),
        "parallel_dir": str(par_dir),
        "reference": reference,
        "languages": dict(sorted(per_lang.items())),
        "summary": _summary(per_lang, reference),
        "vocab_by_script": vocab_by_script(tok),
    }


def write_json(result: dict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, p)
    return p
