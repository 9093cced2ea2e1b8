"""Tokenize a multilingual corpus into Megatron indexed datasets, one (sharded) dataset per language.

Layout of DATA_DIR:

    preprocess.json              manifest: per language documents, tokens, shards; tokenizer hash;
                                 records quarantined (on_bad="quarantine")
    <lang>/<lang>_0000.bin/.idx  Megatron IndexedDataset shards (documents end with EOD)
    <lang>/<lang>_0000.json      shard sidecar, written last = "this shard is complete"
    quarantine/<part>.parquet    the records of an input file set aside (REJECT_SCHEMA), if any
    .parts/<part>/               phase-1 output per input file (kept only with keep_parts)

Input is read through the pipeline's readers (`read_corpus`), so a broken record means what
it means in a pipeline run: with `on_bad="strict"` (the default) the first one stops
preprocessing with its file:line and reason; with "quarantine" it is left out, counted per
file and reason in the manifest, and written to quarantine/.

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

from babelmill.errors import BabelmillError
from babelmill.pipeline.io.readers import (
    InputError,
    OnBad,
    Quarantine,
    ReadOptions,
    check_on_bad,
    detect_format,
    plan_units,
    read_corpus,
)
from babelmill.pretrain.data.tokenizer import eos_token_id, file_sha256, load_tokenizer

log = logging.getLogger(__name__)

INPUT_SUFFIXES = (".parquet", ".jsonl", ".json", ".jsonl.gz")
MANIFEST = "preprocess.json"
DEFAULT_SHARD_TOKENS = 1_000_000_000


class PreprocessError(BabelmillError, ValueError):
    pass


#: How a reader's reject reason reads in a preprocess error ("<file>:<line>: invalid JSON (...)").
_REASON_WORDS = {
    "bad_json": "invalid JSON",
    "bad_utf8": "invalid UTF-8",
    "not_an_object": "not a JSON object",
    "missing_text": "no text",
    "empty_text": "empty text",
    "doc_too_large": "document too large",
    "corrupt_compressed": "corrupt compressed data",
    "corrupt_parquet": "corrupt Parquet",
}


class PreprocessInputError(InputError, PreprocessError):
    """The readers' InputError (path, line or offset, reason, detail) raised by preprocess: also a
    PreprocessError, which is what the pretrain CLI and existing callers catch. Same constructor
    as InputError, so it survives the pickling back from a pool or Ray worker."""

    def __init__(self, path: str, reason: str, detail: str = "", line: int | None = None,
                 offset: int | None = None):
        super().__init__(path, reason, detail, line, offset)
        where = f"{path}:{line}" if line is not None else (f"{path}:@{offset}" if offset is not None else path)
        words = _REASON_WORDS.get(reason, reason.replace("_", " "))
        self.args = (f"{where}: {words} ({reason}: {detail})" if detail else f"{where}: {words} ({reason})",)


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
                   batch_size: int = 1024, on_bad: OnBad = "strict", quarantine: Quarantine | None = None,
                   quarantine_to: str | Path | None = None) -> Iterator[list[tuple[str, str]]]:
    """Yield batches of (lang, text). Language comes from the record, else from DIR/<lang>/.

    Read with the pipeline's readers: `on_bad="strict"` raises PreprocessInputError at the first
    bad record (broken JSON or UTF-8, no or empty text...); "quarantine" counts them into
    `quarantine` (and writes them to `quarantine_to`, a Parquet file, if given)."""
    # A file named directly is JSONL unless its name says otherwise, as it always was here.
    opts = ReadOptions(format=detect_format(inp.path) or "jsonl", text_field=text_field, id_field=None,
                       extra_fields=(lang_field,), batch_size=batch_size)
    try:
        units = plan_units([inp.path], opts)
        for unit, docs in read_corpus(units, opts, on_bad=on_bad, quarantine=quarantine,
                                      quarantine_to=quarantine_to):
            texts = docs.column("text").to_pylist()
            langs = docs.column(lang_field).to_pylist()
            if inp.lang_from_dir is None and not all(langs):
                i = next(i for i, lg in enumerate(langs) if not lg)
                where = f"{inp.path}:{docs.column('offset')[i].as_py()}" if unit.format == "jsonl" else inp.path
                raise PreprocessError(f"{where}: record has no '{lang_field}' and the file is not in a "
                                      f"DIR/<lang>/ folder")
            yield [(lg or inp.lang_from_dir, t) for lg, t in zip(langs, texts, strict=True)]
    except InputError as e:
        if isinstance(e, PreprocessError):
            raise
        raise PreprocessInputError(e.path, e.reason, e.detail, e.line, e.offset) from None


def _token_dtype(vocab_size: int):
    from megatron.core.datasets.indexed_dataset import DType

    return DType.optimal_dtype(vocab_size)


def tokenize_part(inp: InputFile, tokenizer_json: str, parts_dir: str, text_field: str = "text",
                  lang_field: str = "lang", on_bad: OnBad = "strict", quarantine_dir: str | None = None) -> dict:
    """Phase 1 for one input file (runs in a worker process). Returns the part's summary.

    With on_bad="quarantine", the records set aside are counted in the summary and, if
    `quarantine_dir` is given, written to `<quarantine_dir>/<part_id>.parquet`. A part finished
    in quarantine mode with records set aside is redone when strict is asked for, so that the
    strict run reports them instead of reusing them."""
    import torch
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    final = Path(parts_dir) / inp.part_id
    done = final / "part.json"
    if done.is_file():
        prev = json.loads(done.read_text())
        if not (on_bad == "strict" and (prev.get("quarantine") or {}).get("records")):
            return prev
    tmp = Path(parts_dir) / f"{inp.part_id}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    tok = load_tokenizer(tokenizer_json)
    eos = eos_token_id(tok, tokenizer_json)
    dtype = _token_dtype(tok.get_vocab_size(with_added_tokens=True))
    builders: dict[str, IndexedDatasetBuilder] = {}
    stats: dict[str, dict] = {}
    quarantine = Quarantine()
    qfile = (Path(quarantine_dir) / f"{inp.part_id}.parquet"
             if quarantine_dir is not None and on_bad == "quarantine" else None)
    t0 = time.perf_counter()
    for batch in iter_documents(inp, text_field, lang_field, on_bad=on_bad, quarantine=quarantine,
                                quarantine_to=qfile):
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
    q = quarantine.summary()
    summary = {"part_id": inp.part_id, "input": inp.path, "languages": stats,
               "quarantine": {"records": q["records"], "by_reason": q["by_reason"],
                              **({"records_lost": q["records_lost"]} if "records_lost" in q else {}),
                              "file": str(qfile) if qfile is not None and q["records"] else None},
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
               progress: bool = False, engine: str = "process", on_bad: OnBad = "strict") -> dict:
    """Tokenize `inputs` into per-language indexed datasets under `output`; return the manifest.

    `engine`: "process" (a local process pool of `workers`) or "ray" (one Ray task per input
    file on the cluster of $RAY_ADDRESS, or a local Ray; DATA_DIR must be on shared storage).
    `on_bad`: "strict" (a bad input record is an error naming its file:line) or "quarantine"
    (left out, counted in the manifest's `quarantine`, written to DATA_DIR/quarantine/)."""
    check_on_bad(on_bad)
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
        # a strict rerun over data an earlier quarantine run set records aside from must fail
        quarantined = on_bad == "strict" and (old.get("quarantine") or {}).get("records")
        if old.get("inputs_fingerprint") == fingerprint and not quarantined and all(
                (out / f"{s}.idx").is_file() and (out / f"{s}.json").is_file()
                for v in old["languages"].values() for s in v["shards"]):
            log.info("preprocess: %s is up to date", out)
            return old

    parts_dir = out / ".parts"
    parts_dir.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    workers = max(1, min(workers or os.cpu_count() or 1, len(files)))
    quarantine_dir = (out / "quarantine").resolve()  # workers (Ray) may run elsewhere
    args = [(f, tokenizer_json, str(parts_dir), text_field, lang_field, on_bad, str(quarantine_dir))
            for f in files]
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
    quarantine = Quarantine()
    written = []
    for s in summaries:
        q = s.get("quarantine") or {}
        quarantine.merge({"files": {s["input"]: q}})
        if q.get("file"):
            written.append(os.path.relpath(q["file"], out))
    qsum = quarantine.summary()
    manifest = {
        "format": "megatron-indexed-dataset",
        "tokenizer": {"path": tokenizer_json, "sha256": tok_hash, "vocab_size": vocab, "eos_id": eos},
        "dtype": np.dtype(dtype).name,
        "inputs": [f.path for f in files],
        "inputs_fingerprint": fingerprint,
        "languages": languages,
        "documents": sum(v["documents"] for v in languages.values()),
        "tokens": total_tokens,
        "quarantine": {"on_bad": on_bad, **qsum, "written": written},
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
