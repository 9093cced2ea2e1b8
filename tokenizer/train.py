"""`babelmill tokenizer train`: scan -> plan the temperature sample -> stream it into a trainer ->
write the tokenizer directory (see artifacts.py).

Memory bound: reading holds one reader batch (1000 docs) and one sample batch (256 docs);
the BPE trainer holds the distinct pre-tokens of the sample with their counts — at most the
sample size, which plan_sample caps at `max_sample_chars` (200M characters by default, a few
GB of trainer state in the worst case of all-unique words; typically far less since words
repeat). SentencePiece holds at most `max_sentences` lines. Peak RSS is recorded in the metadata.

Vocabulary size: the default (8000) suits the ~0.5 MB demo corpus. At scale, for 43 languages
and ~30 scripts, use 64k (small models) to 256k (mT5/Gemma/BLOOM range): each extra script
needs a few thousand entries before its words stop being split into characters.
"""

from __future__ import annotations

import logging
import time
import unicodedata
from pathlib import Path

from babelmill.languages import load_registry
from babelmill.tokenizer import artifacts
from babelmill.tokenizer.corpus import DEFAULT_LANG_FIELDS, fingerprint
from babelmill.tokenizer.sample import SampleCounts, iter_sample, measure_cost, plan_sample, scan

log = logging.getLogger(__name__)

DEFAULT_VOCAB = 8000
# "auto": parity-aware BPE (train_parity.py) when a parallel dev set is given, else HF BPE on the
# pilot-corrected sample. Without a dev set the parity-aware trainer can only equalize tokens per
# compressed byte, which measured worse than the pilot-corrected BPE (bench/tokenizer_parity.py:
# 1.989 vs 1.912 worst parity on the report articles at 8k), so it is not the default then.
DEFAULT_KIND = "auto"
KINDS = ("auto", "parity", "bpe", "unigram")
DEFAULT_TEMPERATURE = 5.0  # NLLB sampled its SentencePiece training data with T=5
DEFAULT_COST_POWER = 2.0  # pilot parity correction of the sample for kind "bpe" (0 = plain temperature sampling)
# The parity-aware trainer corrects per merge, so its sample (and the sample of anything compared
# with it) needs no pilot: cost_power defaults to 0 for kind "parity".
PILOT_FRACTION = 8  # pilot vocabulary = vocab_size // 8 (at least 512)
DEFAULT_RESERVED = 28  # 4 core specials + 28 reserved = 32 ids


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _dev_fingerprint(dev: dict[str, list[str]]) -> str:
    import hashlib

    h = hashlib.sha256()
    for lang in sorted(dev):
        h.update(lang.encode() + b"\0" + "\n".join(dev[lang]).encode() + b"\1")
    return h.hexdigest()[:16]


def wanted_meta(kind: str, vocab_size: int, temperature: float, seed: int, fp: str, reserved: int,
                options: dict) -> dict:
    return {
        "kind": kind,
        "vocab_size": vocab_size,
        "temperature": temperature,
        "seed": seed,
        "input_fingerprint": fp,
        "reserved_tokens": reserved,
        "options": options,
    }


def train(
    inputs: list[str],
    out_dir: str | Path,
    vocab_size: int = DEFAULT_VOCAB,
    kind: str = DEFAULT_KIND,
    temperature: float = DEFAULT_TEMPERATURE,
    seed: int = 0,
    cost_power: float | None = None,
    size_unit: str = "compressed",
    reserved: int = DEFAULT_RESERVED,
    lang_fields=DEFAULT_LANG_FIELDS,
    sample_size: int | None = None,
    max_sample_chars: int = 200_000_000,
    max_repeat: float = 8.0,
    languages: str | None = None,
    resume: bool = True,
    parallel: str | Path | None = None,
    parity_options: dict | None = None,
) -> dict:
    """Train one tokenizer into `out_dir`; returns its metadata. With `resume`, an existing
    directory whose metadata matches (kind, vocab, temperature, seed, input fingerprint, options)
    is reused without training. cost_power > 0 adds the pilot-based parity correction
    (sample.py); the pilot is a byte-level BPE of vocab_size // 8 for every kind. cost_power None
    means DEFAULT_COST_POWER for kind "bpe" and 0 otherwise. `parallel` (kind "parity" only) is a
    directory of aligned <lang>.txt whose parity the trainer equalizes (otherwise: tokens per
    compressed byte of the sample); `parity_options` go to train_parity.train_parity_bpe."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "parity" if parallel is not None else "bpe"
    if cost_power is None:
        cost_power = DEFAULT_COST_POWER if kind == "bpe" else 0.0
    if parallel is not None and kind != "parity":
        raise ValueError("a parallel dev set (--parallel) is used by kind 'parity' only")
    if vocab_size < 300:
        raise ValueError(f"vocab_size {vocab_size} is too small (256 byte symbols + specials need ~300)")
    inputs = [str(p) for p in inputs]
    options = {"size_unit": size_unit, "cost_power": cost_power, "pilot_fraction": PILOT_FRACTION,
               "sample_size": sample_size,
               "max_sample_chars": max_sample_chars, "max_repeat": max_repeat, "lang_fields": list(lang_fields)}
    dev = None
    if kind == "parity":
        from babelmill.tokenizer.evaluate import read_parallel
        from babelmill.tokenizer.train_parity import DEFAULT_OPTIONS

        parity_options = {**DEFAULT_OPTIONS, **(parity_options or {})}
        options["parity"] = dict(parity_options)
        if parallel is not None:
            dev = read_parallel(parallel)
            options["parity"]["parallel"] = str(parallel)
            options["parity"]["parallel_fingerprint"] = _dev_fingerprint(dev)
    fp = fingerprint(inputs, lang_fields)
    wanted = wanted_meta(kind, vocab_size, temperature, seed, fp, reserved, options)
    if resume and artifacts.meta_matches(artifacts.read_meta(out_dir), wanted):
        log.info("%s: up to date, not retraining", out_dir)
        return {**artifacts.read_meta(out_dir), "reused": True}

    from babelmill.tokenizer.train_bpe import train_bpe

    reg = load_registry(languages)
    specials = artifacts.special_tokens(reserved)
    t0 = time.perf_counter()
    stats = scan(inputs, set(reg.codes), lang_fields)
    plan_args = dict(seed=seed, sample_size=sample_size, max_sample_chars=max_sample_chars,
                     max_repeat=max_repeat, size_unit=size_unit)
    plan = plan_sample(stats, temperature, **plan_args)
    t_scan = time.perf_counter()
    if cost_power:
        # A small pilot: its cost reflects how well each script's basic units are covered, not
        # how much repeated text a large vocabulary memorized (which flattens the signal).
        pilot_vocab = max(512, vocab_size // PILOT_FRACTION)
        pilot = train_bpe(iter_sample(inputs, plan, lang_fields, normalize=_nfc), pilot_vocab, specials)
        cost = measure_cost(inputs, pilot, stats, lang_fields, seed=seed)
        plan = plan_sample(stats, temperature, cost=cost, cost_power=cost_power, **plan_args)
    t_pilot = time.perf_counter()
    counts = SampleCounts()
    trainer_stats: dict = {}
    if kind == "parity":
        from babelmill.tokenizer.sample import iter_sample_docs
        from babelmill.tokenizer.train_parity import train_parity_bpe

        tok = train_parity_bpe(iter_sample_docs(inputs, plan, lang_fields, counts, normalize=_nfc), vocab_size,
                               specials, dev=dev, stats=trainer_stats, **parity_options)
    elif kind == "bpe":
        tok = train_bpe(iter_sample(inputs, plan, lang_fields, counts, normalize=_nfc), vocab_size, specials)
    else:
        from babelmill.tokenizer.train_unigram import train_unigram

        tok = train_unigram(iter_sample(inputs, plan, lang_fields, counts, normalize=_nfc), vocab_size, specials,
                            out_dir, seed=seed)
    t_end = time.perf_counter()
    meta = {
        **wanted,
        "actual_vocab_size": tok.get_vocab_size(),
        "special_tokens": specials,
        "inputs": inputs,
        "corpus": {lang: {"docs": stats.docs[lang], "chars": stats.chars[lang], "compressed_bytes": stats.zbytes[lang]}
                   for lang in sorted(stats.docs)},
        "skipped": {"rejected": dict(stats.read.rejected), "non_target_lang": dict(stats.read.non_target)},
        "sample_plan": plan.to_dict(),
        "sample": counts.to_dict(),
        "sample_total_chars": sum(counts.chars.values()),
        "seconds": {"scan": round(t_scan - t0, 3), "pilot": round(t_pilot - t_scan, 3),
                    "sample_and_train": round(t_end - t_pilot, 3), "total": round(t_end - t0, 3)},
        "peak_rss_mb": artifacts.peak_rss_mb(),
    }
    if trainer_stats:
        meta["trainer"] = trainer_stats
    artifacts.write_dir(out_dir, tok, meta)
    return meta
