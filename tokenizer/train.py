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
from babelmill.tokenizer.corpus import DEFAULT_LANG_FIELDS, TokenizerError, fingerprint
from babelmill.tokenizer.sample import SampleCounts, iter_sample, measure_cost, plan_sample, scan

log = logging.getLogger(__name__)

DEFAULT_VOCAB = 8000
# "auto" (the default): parity-aware BPE (train_parity.py) equalizing parity on a parallel dev set:
# `parallel` if given, else the bundled dev set (UDHR articles 4, 9, 14, 19, 24 in the 43 target
# languages: babelmill/data/tokenizer_dev, built by bench/make_tokenizer_dev.py), restricted to the
# sample's languages (options.parity.parallel_fingerprint: the whole bundled set; dev_set: the part used).
# If the bundled set cannot serve (no en.txt, or it covers fewer than 2 of the sample's
# languages), "auto" falls back to HF BPE on the pilot-corrected sample ("bpe"), which measured
# better than parity-aware BPE without any dev set (tokens per compressed byte as the cost;
# bench/tokenizer_parity.py: 1.912 vs 1.989 worst parity on the report articles at 8k).
# "parity" without `parallel` also uses the bundled set; when it cannot serve, the trainer falls
# back to the compressed-byte cost (the user asked for this trainer). parallel=False (CLI
# --no-parallel) asks for the compressed-byte cost explicitly.
DEFAULT_KIND = "auto"
KINDS = ("auto", "parity", "bpe", "unigram")
DEFAULT_TEMPERATURE = 5.0  # NLLB sampled its SentencePiece training data with T=5
DEFAULT_COST_POWER = 2.0  # pilot parity correction of the sample for kind "bpe" (0 = plain temperature sampling)
# The parity-aware trainer corrects per merge, so its sample (and the sample of anything compared
# with it) needs no pilot: cost_power defaults to 0 for kind "parity".
PILOT_FRACTION = 8  # pilot vocabulary = vocab_size // 8 (at least 512)
DEFAULT_RESERVED = 28  # 4 core specials + 28 reserved = 32 ids


BUNDLED_DEV_NAME = "bundled:udhr-4,9,14,19,24"
MIN_DEV_LANGUAGES = 2  # the bundled set must cover at least this many of the sample's languages


def _bundled_dir() -> Path:
    """babelmill/data/tokenizer_dev, shipped with the package (babelmill.paths)."""
    from babelmill.paths import data_file

    return data_file("tokenizer_dev")


def bundled_dev() -> dict[str, list[str]] | None:
    """The bundled parallel dev set ({lang: lines}), or None if it is missing or lacks en.txt."""
    from babelmill.tokenizer.evaluate import REFERENCE, ParallelDataError, read_parallel

    d = _bundled_dir()
    if not (d / f"{REFERENCE}.txt").is_file():
        return None
    try:
        return read_parallel(d, reference=REFERENCE)
    except ParallelDataError as e:
        log.info("bundled tokenizer dev set unusable: %s", e)
        return None


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


def _options(kind: str, cost_power: float | None, base: dict, parity_options: dict | None,
             dev_name: str | None, dev_fp: str | None) -> tuple[dict, dict | None]:
    """(metadata options, train_parity_bpe keywords or None) of one resolved kind."""
    if cost_power is None:
        cost_power = DEFAULT_COST_POWER if kind == "bpe" else 0.0
    options = {**base, "cost_power": cost_power}
    if kind != "parity":
        return options, None
    from babelmill.tokenizer.train_parity import DEFAULT_OPTIONS

    popts = {**DEFAULT_OPTIONS, **(parity_options or {})}
    options["parity"] = dict(popts)
    if dev_name is not None:
        options["parity"]["parallel"] = dev_name
        options["parity"]["parallel_fingerprint"] = dev_fp
    return options, popts


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
    parallel: str | Path | None | bool = None,
    parity_options: dict | None = None,
) -> dict:
    """Train one tokenizer into `out_dir`; returns its metadata. With `resume`, an existing
    directory whose metadata matches (kind, vocab, temperature, seed, input fingerprint, options)
    is reused without training. cost_power > 0 adds the pilot-based parity correction
    (sample.py); the pilot is a byte-level BPE of vocab_size // 8 for every kind. cost_power None
    means DEFAULT_COST_POWER for kind "bpe" and 0 otherwise.

    `parallel` (kinds "auto"/"parity"): a directory of aligned <lang>.txt whose parity the
    parity-aware trainer equalizes; None: the bundled dev set (bundled_dev()) restricted to the
    sample's languages, or, where it cannot serve (no en.txt, fewer than MIN_DEV_LANGUAGES of
    the sample's languages), "bpe" for kind "auto" and the compressed-byte cost for "parity";
    False: no dev set (kind "auto" then means "bpe", "parity" the compressed-byte cost).
    The metadata's options.parity.parallel names the dev set (its path or BUNDLED_DEV_NAME) with
    its fingerprint, and "dev_set" the languages actually used. `parity_options` go to
    train_parity.train_parity_bpe."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if parallel is True:
        raise ValueError("parallel must be a directory, None (bundled dev set) or False (none)")
    explicit = parallel not in (None, False)
    if explicit and kind not in ("auto", "parity"):
        raise TokenizerError("a parallel dev set (--parallel) is used by kind 'parity' only")
    if vocab_size < 300:
        raise TokenizerError(f"vocab_size {vocab_size} is too small (256 byte symbols + specials need ~300)")
    inputs = [str(p) for p in inputs]
    base = {"size_unit": size_unit, "pilot_fraction": PILOT_FRACTION, "sample_size": sample_size,
            "max_sample_chars": max_sample_chars, "max_repeat": max_repeat, "lang_fields": list(lang_fields)}

    # Candidates, preferred first: (kind, dev set, its name, fingerprint). The bundled set's fit
    # to the sample is known only after the scan, so its fallback is a candidate too; both are
    # checked for reuse (the input fingerprint fixes which of them the data leads to).
    dev = None
    if explicit:
        from babelmill.tokenizer.evaluate import read_parallel

        dev = read_parallel(parallel)
        candidates = [("parity", dev, str(parallel), _dev_fingerprint(dev))]
    elif kind in ("auto", "parity") and parallel is None and (bundled := bundled_dev()) is not None:
        fallback = ("bpe" if kind == "auto" else "parity", None, None, None)
        candidates = [("parity", bundled, BUNDLED_DEV_NAME, _dev_fingerprint(bundled)), fallback]
    else:
        if kind in ("auto", "parity") and parallel is None:
            log.info("no bundled tokenizer dev set with en.txt at %s: %s", _bundled_dir(),
                     "training HF BPE (kind bpe)" if kind == "auto" else "parity cost = tokens per compressed byte")
        candidates = [("bpe" if kind == "auto" else kind, None, None, None)]
    fp = fingerprint(inputs, lang_fields)
    wanted_all = []
    for i, (k, _, name, dfp) in enumerate(candidates):
        options, _ = _options(k, cost_power, base, parity_options, name, dfp)
        if i:  # the fallback: marked, so a directory trained without a dev set before is not reused
            options["dev_fallback"] = f"{BUNDLED_DEV_NAME} covers < {MIN_DEV_LANGUAGES} of the sample's languages"
        wanted_all.append(wanted_meta(k, vocab_size, temperature, seed, fp, reserved, options))
    if resume:
        old = artifacts.read_meta(out_dir)
        if any(artifacts.meta_matches(old, w) for w in wanted_all):
            log.info("%s: up to date, not retraining", out_dir)
            return {**old, "reused": True}

    from babelmill.tokenizer.train_bpe import train_bpe

    reg = load_registry(languages)
    specials = artifacts.special_tokens(reserved)
    t0 = time.perf_counter()
    stats = scan(inputs, set(reg.codes), lang_fields)
    choice = 0
    dev_info = None
    kind, dev, dev_name, _ = candidates[0]
    if dev_name == BUNDLED_DEV_NAME:
        from babelmill.tokenizer.evaluate import REFERENCE

        sample_langs = sorted(lang for lang, n in stats.docs.items() if n)
        covered = [lang for lang in sample_langs if lang in dev]
        if len(covered) < MIN_DEV_LANGUAGES:
            choice = 1
            kind, dev, dev_name, _ = candidates[1]
            log.info("bundled tokenizer dev set (%s) covers %d of the sample's %d languages (%s; need %d): %s",
                     BUNDLED_DEV_NAME, len(covered), len(sample_langs), ", ".join(covered) or "none",
                     MIN_DEV_LANGUAGES, "training HF BPE (kind bpe) instead" if kind == "bpe"
                     else "parity cost = tokens per compressed byte instead")
        else:
            dev = {lang: dev[lang] for lang in sorted(set(covered) | {REFERENCE})}
            uncovered = [lang for lang in sample_langs if lang not in dev]
            if uncovered:
                log.warning("bundled tokenizer dev set lacks %s: these languages get merges only through "
                            "pairs they share with others (give --parallel with them to fix)", ", ".join(uncovered))
            dev_info = {"source": BUNDLED_DEV_NAME, "path": str(_bundled_dir()), "languages": sorted(dev),
                        "uncovered": uncovered, "fingerprint": _dev_fingerprint(dev)}
            log.info("parity-aware BPE on the bundled dev set %s (%d languages)", BUNDLED_DEV_NAME, len(dev))
    elif dev is not None:
        dev_info = {"source": dev_name, "path": dev_name, "languages": sorted(dev),
                    "fingerprint": candidates[0][3]}
    wanted = wanted_all[choice]
    cost_power = wanted["options"]["cost_power"]
    _, parity_kw = _options(kind, cost_power, base, parity_options, None, None)
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
                               specials, dev=dev, stats=trainer_stats, **parity_kw)
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
    if kind == "parity":
        meta["dev_set"] = dev_info  # None: no dev set (cost = tokens per compressed byte)
    if trainer_stats:
        meta["trainer"] = trainer_stats
    artifacts.write_dir(out_dir, tok, meta)
    return meta
