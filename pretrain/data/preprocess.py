"""Tokenize a multilingual corpus into Megatron indexed datasets, one (sharded) dataset per language.

Layout of DATA_DIR:

    preprocess.json              manifest: per language documents, tokens, shards; tokenizer hash
    <lang>/<lang>_0000.bin/.idx  Megatron IndexedDataset shards (documents end with EOD)
    <lang>/<lang>_0000.json      shard sidecar, written last = "this shard is complete"
    .parts/<part>/               phase-1 output per input file (kept only with keep_parts)

Two phases, both resumable:
1. every input file is tokenized (process pool) into `.parts/<part-id>/<lang>.bin/.idx`; a part
   is written under a temporary name and renamed when complete, so finished parts are skipped
   on a rerun and a crash never leaves a half part that looks finished;
2. per language, consecutive parts are concatenated into shards of at most `shard_tokens` tokens
   (IndexedDatasetBuilder.add_index); each shard is written to temp names, renamed, and then its
   sidecar is written, so finished shards are skipped on a rerun.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .tokenizer import eos_token_id, file_sha256, load_tokenizer

log = logging.getLogger(__name__)

INPUT_SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz")
MANIFEST = "preprocess.json"
DEFAULT_SHARD_TOKENS = 1_000_000_000


class PreprocessError(ValueError):
    pass


@dataclass(frozen=True)
class InputFile:
    path: str
    lang_from_dir: str | None  # DIR/<lang>/*.parquet layout
    part_id: str


def _is_input(p: Path) -> bool:
    return p.is_file() and any(p.name.endswith(s) for s in INPUT_SUFFIXES)


def discover_inputs(inputs: list[str | Path]) -> list[InputFile]:
    """Files given directly, or every input file below a directory (sorted, stable order)."""
    found: list[InputFile] = []
    for item in inputs:
        root = Path(item)
        if root.is_file():
            files, base = [root], root.parent
        elif root.is_dir():
            if (root / "balance.json").is_file() and (root / "data").is_dir():
                root = root / "data"  # a balanced run directory: its corpus is data/<lang>/*.parquet
            files, base = sorted(p for p in root.rglob("*") if _is_input(p)
                                 and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)), root
        else:
            raise PreprocessError(f"{root}: input not found")
        for f in files:
            rel = f.relative_to(base)
            lang_dir = rel.parts[0] if len(rel.parts) >= 2 else None
            st = f.stat()
            key = f"{f.resolve()}|{st.st_size}|{int(st.st_mtime)}"
            pid = f"{f.name.split('.')[0]}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
            found.append(InputFile(str(f), lang_dir, pid))
    if not found:
        raise PreprocessError(f"no input files ({', '.join(INPUT_SUFFIXES)}) in {', '.join(map(str, inputs))}")
    return found


def iter_documents(inp: InputFile, text_field: str = "text", lang_field: str = "lang",
                   batch_size: int = 1024) -> Iterator[list[tuple[str, str]]]:
    """Yield batches of (lang, text). Language comes from the record, else from DIR/<lang>/."""
    path = inp.path

    def lang_of(rec_lang, where):
        lang = rec_lang or inp.lang_from_dir
        if not lang:
            raise PreprocessError(f"{where}: record has no '{lang_field}' and the file is not in a "
                                  f"DIR/<lang>/ folder")
        return str(lang)

    if path.endswith(".parquet"):
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        names = pf.schema_arrow.names
        if text_field not in names:
            raise PreprocessError(f"{path}: no '{text_field}' column (columns: {', '.join(names)})")
        cols = [text_field] + ([lang_field] if lang_field in names else [])
        for rb in pf.iter_batches(batch_size=batch_size, columns=cols):
            texts = rb.column(text_field).to_pylist()
            langs = rb.column(lang_field).to_pylist() if lang_field in names else [None] * len(texts)
            yield [(lang_of(lg, path), t) for lg, t in zip(langs, texts, strict=True) if t]
        return
    import gzip

    opener = gzip.open if path.endswith(".gz") else open
    batch: list[tuple[str, str]] = []
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise PreprocessError(f"{path}:{lineno}: invalid JSON ({e.msg})") from None
            text = rec.get(text_field)
            if not text:
                continue
            batch.append((lang_of(rec.get(lang_field), f"{path}:{lineno}"), text))
            if len(batch) >= batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _token_dtype(vocab_size: int):
    from megatron.core.datasets.indexed_dataset import DType

    return DType.optimal_dtype(vocab_size)


def tokenize_part(inp: InputFile, tokenizer_json: str, parts_dir: str, text_field: str = "text",
                  lang_field: str = "lang") -> dict:
    """Phase 1 for one input file (runs in a worker process). Returns the part's summary."""
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    final = Path(parts_dir) / inp.part_id
    done = final / "part.json"
    if done.is_file():
        return json.loads(done.read_text())
    tmp = Path(parts_dir) / f"{inp.part_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tok = load_tokenizer(tokenizer_json)
    eos = eos_token_id(tok, tokenizer_json)
    dtype = _token_dtype(tok.get_vocab_size(with_added_tokens=True))
    builders: dict[str, IndexedDatasetBuilder] = {}
    stats: dict[str, dict] = {}
    t0 = time.perf_counter()
    for batch in iter_documents(inp, text_field, lang_field):
        encs = tok.encode_batch([t for _, t in batch], add_special_tokens=False)
        for (lang, _), enc in zip(batch, encs, strict=True):
            ids = np.asarray(enc.ids + [eos], dtype=dtype)
            b = builders.get(lang)
            if b is None:
                b = builders[lang] = IndexedDatasetBuilder(str(tmp / f"{lang}.bin"), dtype=dtype)
                stats[lang] = {"documents": 0, "tokens": 0}
            b.add_item(torch.from_numpy(ids))
            b.end_document()
            stats[lang]["documents"] += 1
            stats[lang]["tokens"] += int(ids.size)
    for lang, b in builders.items():
        b.finalize(str(tmp / f"{lang}.idx"))
    summary = {"part_id": inp.part_id, "input": inp.path, "languages": stats,
               "seconds": time.perf_counter() - t0}
    (tmp / "part.json").write_text(json.dumps(summary, indent=1))
    if final.exists():  # a concurrent/previous incomplete attempt without part.json
        shutil.rmtree(final)
    os.replace(tmp, final)
    return summary


def _plan_shards(parts: list[dict], lang: str, shard_tokens: int) -> list[list[dict]]:
    shards: list[list[dict]] = [[]]
    size = 0
    for p in parts:
        st = p["languages"].get(lang)
        if not st:
            continue
        if shards[-1] and size + st["tokens"] > shard_tokens:
            shards.append([])
            size = 0
        shards[-1].append(p)
        size += st["tokens"]
    return [s for s in shards if s]


def _build_shard(lang: str, prefix: Path, parts: list[dict], parts_dir: Path, dtype) -> dict:
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    sidecar = prefix.with_suffix(".json")
    ids = [p["part_id"] for p in parts]
    if sidecar.is_file():
        prev = json.loads(sidecar.read_text())
        if prev.get("parts") == ids and prefix.with_suffix(".idx").is_file():
            return prev
    tmp = prefix.parent / f".{prefix.name}.tmp-{os.getpid()}"
    builder = IndexedDatasetBuilder(str(tmp) + ".bin", dtype=dtype)
    docs = tokens = 0
    for p in parts:
        builder.add_index(str(parts_dir / p["part_id"] / lang))
        docs += p["languages"][lang]["documents"]
        tokens += p["languages"][lang]["tokens"]
    builder.finalize(str(tmp) + ".idx")
    os.replace(str(tmp) + ".bin", str(prefix) + ".bin")
    os.replace(str(tmp) + ".idx", str(prefix) + ".idx")
    info = {"language": lang, "parts": ids, "documents": docs, "tokens": tokens}
    tmp_side = sidecar.with_name(sidecar.name + ".tmp")
    tmp_side.write_text(json.dumps(info, indent=1))
    os.replace(tmp_side, sidecar)
    return info


def preprocess(inputs: list[str | Path] | str | Path, tokenizer_json: str | Path, output: str | Path,
               workers: int | None = None, shard_tokens: int = DEFAULT_SHARD_TOKENS,
               text_field: str = "text", lang_field: str = "lang", keep_parts: bool = False,
               progress: bool = False, engine: str = "process") -> dict:
    """Tokenize `inputs` into per-language indexed datasets under `output`; return the manifest.

    `engine`: "process" (a local process pool of `workers`) or "ray" (one Ray task per input
    file on the cluster of $RAY_ADDRESS, or a local Ray; DATA_DIR must be on shared storage)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_json = str(Path(tokenizer_json).resolve())
    tok = load_tokenizer(tokenizer_json)
    eos = eos_token_id(tok, tokenizer_json)
    vocab = tok.get_vocab_size(with_added_tokens=True)
    tok_hash = file_sha256(tokenizer_json)
    files = discover_inputs(list(inputs))
    fingerprint = hashlib.sha256("\n".join(f.part_id for f in files).encode()).hexdigest()

    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("tokenizer", {}).get("sha256") not in (None, tok_hash):
            raise PreprocessError(f"{manifest_path}: DATA_DIR was made with another tokenizer "
                                  f"({old['tokenizer'].get('path')}); use a new output directory")
        if old.get("inputs_fingerprint") == fingerprint and all(
                (out / f"{s}.idx").is_file() and (out / f"{s}.json").is_file()
                for v in old["languages"].values() for s in v["shards"]):
            log.info("preprocess: %s is up to date", out)
            return old

    parts_dir = out / ".parts"
    parts_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    args = [(f, tokenizer_json, str(parts_dir), text_field, lang_field) for f in files]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(files), desc="tokenize", unit="file")
    summaries: list[dict] = []
    if engine == "ray":
        import ray

        from babelmill.pipeline.engines.ray_engine import ensure_ray

        ensure_ray()
        remote = ray.remote(num_cpus=1)(tokenize_part)
        refs = [remote.remote(*a) for a in args]
        pending = list(refs)
        while pending:
            _, pending = ray.wait(pending, num_returns=1)
            if bar:
                bar.update()
        summaries = ray.get(refs)  # in input order, like the process pool
    elif workers == 1:
        for a in args:
            summaries.append(tokenize_part(*a))
            if bar:
                bar.update()
    else:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            futs = [ex.submit(tokenize_part, *a) for a in args]
            for fut in futs:
                summaries.append(fut.result())
                if bar:
                    bar.update()
    if bar:
        bar.close()
    tokenize_seconds = time.perf_counter() - t0

    langs = sorted({lang for s in summaries for lang in s["languages"]})
    dtype = _token_dtype(vocab)
    languages: dict[str, dict] = {}
    for lang in langs:
        (out / lang).mkdir(exist_ok=True)
        shards = []
        for k, group in enumerate(_plan_shards(summaries, lang, shard_tokens)):
            prefix = out / lang / f"{lang}_{k:04d}"
            info = _build_shard(lang, prefix, group, parts_dir, dtype)
            shards.append({"prefix": f"{lang}/{prefix.name}", "documents": info["documents"],
                           "tokens": info["tokens"]})
        languages[lang] = {
            "documents": sum(s["documents"] for s in shards),
            "tokens": sum(s["tokens"] for s in shards),
            "shards": [s["prefix"] for s in shards],
            "shard_tokens": [s["tokens"] for s in shards],
            "shard_documents": [s["documents"] for s in shards],
        }
    total_tokens = sum(v["tokens"] for v in languages.values())
    manifest = {
        "format": "megatron-indexed-dataset",
        "tokenizer": {"path": tokenizer_json, "sha256": tok_hash, "vocab_size": vocab, "eos_id": eos},
        "dtype": np.dtype(dtype).name,
        "inputs": [f.path for f in files],
        "inputs_fingerprint": fingerprint,
        "languages": languages,
        "documents": sum(v["documents"] for v in languages.values()),
        "tokens": total_tokens,
        "workers": workers,
        "tokenize_seconds": round(tokenize_seconds, 3),
        "tokens_per_second_per_worker": round(total_tokens / max(tokenize_seconds, 1e-9) / workers, 1),
    }
    tmp = manifest_path.with_name(MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    os.replace(tmp, manifest_path)
    if not keep_parts:
        shutil.rmtree(parts_dir, ignore_errors=True)
    return manifest


def read_manifest(data_dir: str | Path) -> dict:
    path = Path(data_dir) / MANIFEST
    if not path.is_file():
        raise PreprocessError(f"{path}: not found; run `babelmill pretrain preprocess` first")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PreprocessError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
