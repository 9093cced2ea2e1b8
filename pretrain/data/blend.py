"""Training/validation datasets: a weighted language blend via BlendedMegatronDatasetBuilder.

Language weights come from the balance manifest (`balance.json`, written by the pipeline's
balance stage: `{"languages": {"<lang>": {"weight": w, ...}}}`) when given, else they are
proportional to each language's token count. Inside a language, shards are weighted by tokens.
Every language's shards are split train/valid/test with the same split string, so the
per-language validation sets below are exactly that language's share of the blended valid split.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from babelmill.pretrain.data.preprocess import PreprocessError, read_manifest
from babelmill.pretrain.data.tokenizer import MegatronTokenizerAdapter

log = logging.getLogger(__name__)


@dataclass
class Datasets:
    train: object
    valid: object | None
    test: object | None
    per_language_valid: dict[str, object]
    weights: dict[str, float]
    tokenizer: MegatronTokenizerAdapter
    manifest: dict


def language_weights(manifest: dict, balance_json: str | None) -> dict[str, float]:
    langs = manifest["languages"]
    if not balance_json:
        total = sum(v["tokens"] for v in langs.values())
        return {k: v["tokens"] / total for k, v in langs.items()}
    path = Path(balance_json)
    try:
        bal = json.loads(path.read_text())
    except FileNotFoundError:
        raise PreprocessError(f"{path}: balance manifest not found") from None
    except json.JSONDecodeError as e:
        raise PreprocessError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(bal, dict) or not isinstance(bal.get("languages"), dict):
        raise PreprocessError(f"{path}: expected {{\"languages\": {{\"<lang>\": {{\"weight\": w}}}}}}")
    weights = {}
    for lang, entry in bal["languages"].items():
        w = entry.get("weight") if isinstance(entry, dict) else None
        if not isinstance(w, (int, float)) or w < 0:
            raise PreprocessError(f"{path}: languages.{lang}.weight must be a number >= 0")
        if w == 0:
            continue
        if lang not in langs:
            log.warning("%s: language %s has weight %s but no preprocessed data; ignored", path, lang, w)
            continue
        weights[lang] = float(w)
    missing = sorted(set(langs) - set(bal["languages"]))
    if missing:
        log.warning("%s: no weight for %s; those languages are not trained on", path, ", ".join(missing))
    if not weights:
        raise PreprocessError(f"{path}: no language with a positive weight has preprocessed data")
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


def _rank0_first(fn):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return fn()
    out = fn() if dist.get_rank() == 0 else None
    dist.barrier()
    return out if dist.get_rank() == 0 else fn()


def check_shard(prefix: str | Path) -> int:
    """The document count of a .bin/.idx shard, after checking the .bin holds every byte the .idx
    points at: a truncated .bin (a copy cut short, a full disk) otherwise fails deep inside
    megatron's sampler with a numpy traceback, or not at all until that sample is drawn."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    prefix = Path(prefix)
    idx, bin_ = prefix.with_name(prefix.name + ".idx"), prefix.with_name(prefix.name + ".bin")
    for f in (idx, bin_):
        if not f.is_file():
            raise PreprocessError(f"{f}: shard file missing (re-run `babelmill pretrain preprocess`)")
    try:
        index = IndexedDataset(str(prefix)).index
    except Exception as e:  # noqa: BLE001 - any failure to parse the index: a damaged shard
        raise PreprocessError(f"{idx}: unreadable index ({type(e).__name__}: {e}); re-run "
                              "`babelmill pretrain preprocess`") from None
    expected = 0
    if len(index.sequence_lengths):
        expected = int(index.sequence_pointers[-1]) + int(index.sequence_lengths[-1]) * index.dtype_size
    size = bin_.stat().st_size
    if size < expected:
        raise PreprocessError(f"{bin_}: {size} bytes but its index needs {expected} (truncated?); "
                              "re-run `babelmill pretrain preprocess`")
    return len(index.document_indices) - 1


def check_data_cache(cache_dir: str | Path) -> None:
    """Refuse index caches that are not plain numpy arrays.

    megatron reads its dataset caches (`--save/data_cache/*.npy`) with
    `numpy.load(allow_pickle=True)`, and numpy unpickles any file that does not start with the
    .npy magic: a cache file planted in a save dir from elsewhere would run code on resume.
    A plain array has the magic and a header whose dtype holds no Python objects."""
    from numpy.lib import format as npformat

    from babelmill.pretrain.safe_load import UnsafeCheckpointError

    d = Path(cache_dir)
    if not d.is_dir():
        return
    for p in sorted(d.glob("*.npy")):
        try:
            with open(p, "rb") as f:
                read_header = {(1, 0): npformat.read_array_header_1_0,
                               (2, 0): npformat.read_array_header_2_0}[npformat.read_magic(f)]
                _, _, dtype = read_header(f)
            plain = not dtype.hasobject
        except Exception:  # noqa: BLE001 - no magic / other version / bad header: not plain
            plain = False
        if not plain:
            raise UnsafeCheckpointError(f"unsafe data cache: {p} is not a plain numpy array (megatron "
                                        f"would unpickle it); refused. Delete {d} to rebuild the cache.")


def shard_split(n_docs: int, split: str) -> tuple[int, int, int]:
    """Documents of one shard for train/valid/test under a "a,b,c" split, with at least one
    validation (and test) document whenever the shard has enough documents for that.

    Why not megatron's split string directly: it rounds per shard, so a low-resource language
    with a handful of documents gets an empty validation split, and a GPTDataset asked for
    samples from zero tokens never finishes building its index."""
    w = [float(x) for x in split.split(",")]
    w = [x / sum(w) for x in w] + [0.0] * (3 - len(w))
    valid = max(1, round(w[1] * n_docs)) if w[1] > 0 and n_docs >= 2 else 0
    test = max(1, round(w[2] * n_docs)) if w[2] > 0 and n_docs - valid >= 2 else 0
    return n_docs - valid - test, valid, test


def build_datasets(data_dir: str | Path, seq_length: int, seed: int, split: str,
                   train_samples: int, valid_samples: int, cache_dir: str | Path,
                   balance_json: str | None = None, eod_mask_loss: bool = False,
                   tokenizer_json: str | None = None) -> Datasets:
    """One GPTDataset per shard and split (split by documents, see `shard_split`), blended by
    megatron's BlendedDataset with weight = language weight x shard's share of its tokens;
    the per-language validation sets blend that language's shards only."""
    import math

    from megatron.core.datasets.blended_dataset import BlendedDataset
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    data_dir = Path(data_dir)
    check_data_cache(cache_dir)
    manifest = read_manifest(data_dir)
    tok = MegatronTokenizerAdapter(tokenizer_json or manifest["tokenizer"]["path"])
    if tok.eod != manifest["tokenizer"]["eos_id"]:
        raise PreprocessError(f"{data_dir}: data was tokenized with EOS id {manifest['tokenizer']['eos_id']} "
                              f"but {tok.path} has EOS id {tok.eod}")
    weights = language_weights(manifest, balance_json)

    def config(blend, shard_split_str):
        return GPTDatasetConfig(
            random_seed=seed, sequence_length=seq_length, blend=blend, split=shard_split_str,
            path_to_cache=str(cache_dir), tokenizer=tok, reset_position_ids=False,
            reset_attention_mask=False, eod_mask_loss=eod_mask_loss, create_attention_mask=False,
            mid_level_dataset_surplus=0.05)

    def built_on_rank():
        return True

    surplus = 1.005  # as megatron's own blends: a little more than needed from each part
    parts = []  # (lang, prefix, weight within the whole blend, split tuple)
    for lang, w in weights.items():
        entry = manifest["languages"][lang]
        docs = entry.get("shard_documents") or [None] * len(entry["shards"])
        for prefix, tokens, n_docs in zip(entry["shards"], entry["shard_tokens"], docs, strict=True):
            counted = check_shard(data_dir / prefix)
            if n_docs is None:
                n_docs = counted
            parts.append((lang, str(data_dir / prefix), w * tokens / entry["tokens"], shard_split(n_docs, split)))

    def one(prefix, sp, n_train, n_valid):
        s = ",".join(str(x) for x in sp)
        return BlendedMegatronDatasetBuilder(GPTDataset, [n_train, n_valid, 0], built_on_rank,
                                             config(([prefix], None), s)).build()

    def blended(items, size, cfg_split):
        items = [(d, w) for d, w in items if d is not None and len(d) > 0]
        if not items:
            return None
        if len(items) == 1:
            return items[0][0]
        total = sum(w for _, w in items)
        return BlendedDataset([d for d, _ in items], [w / total for _, w in items], size,
                              config(([], None), cfg_split))

    train_items, valid_items, per_lang_items = [], [], {}
    for lang, prefix, w, sp in parts:
        if sp[0] == 0:
            log.warning("%s: %s has no training documents; skipped", data_dir, prefix)
            continue
        n_train = math.ceil(w * train_samples * surplus) + 1
        n_valid = math.ceil(w * valid_samples * surplus) + 1 if sp[1] else 0
        tr, va, _ = one(prefix, sp, n_train, n_valid if sp[1] else 0)
        train_items.append((tr, w))
        if va is not None and sp[1]:
            valid_items.append((va, w))
            per_lang_items.setdefault(lang, []).append((va, w))
        elif sp[1] == 0:
            log.warning("%s: %s has too few documents for a validation split", data_dir, prefix)
    def blends():
        return (blended(train_items, train_samples, "1,0,0"), blended(valid_items, valid_samples, "0,1,0"),
                {lang: blended(items, None, "0,1,0") for lang, items in per_lang_items.items()})

    # BlendedDataset writes its index cache on rank 0 only and loads it elsewhere: rank 0 first
    train, valid, per_lang = _rank0_first(blends)
    per_lang = {k: v for k, v in per_lang.items() if v is not None}
    return Datasets(train, valid, None, per_lang, weights, tok, manifest)
