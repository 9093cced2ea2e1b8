"""Load multiple-choice benchmarks in the shapes they are published in, into `MCItem`s.

Supported (auto-detected per file / per row):
- lm-eval / Hugging Face JSONL or Parquet: `question`, `choices` (list, or {text: [...], label: [...]}),
  `answer` (0-based index, or a letter / label) or `answerKey`;
- ARC / EXAMS: `question.stem`, `question.choices[{text, label}]`, `answerKey`; EXAMS adds
  `info.language` (a language name) and `info.subject`;
- MMLU CSV: question, A, B, C, D, answer letter; no header; subject taken from the file name;
- our own JSONL (`id, lang, question, choices, gold`), which is what the generalized benchmark is saved as.

The language of an item is, in order: a `lang`/`language` field or EXAMS `info.language`, the
`lang` argument, the file stem if it is a language code (`udhr_mc/fr.jsonl`), else "und".
Translations of one benchmark are aligned by item id. Items without an id get `<file stem>-<row>`,
which aligns translations that keep the original order.

Every malformed item raises `BenchmarkError` naming the file, the item and the line (JSONL/CSV)
or row (Parquet), so a broken download is found before an hour of scoring is spent on it.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from babelmill.contamination.items import BenchmarkError, MCItem

log = logging.getLogger(__name__)
SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Language names used by datasets (EXAMS) that are not target languages of the registry.
_EXTRA_LANGUAGE_NAMES = {
    "albanian": "sq", "croatian": "hr", "serbian": "sr", "north macedonian": "mk", "macedonian": "mk",
    "lithuanian": "lt", "slovak": "sk", "slovenian": "sl", "latvian": "lv", "estonian": "et",
    "danish": "da", "norwegian": "no", "catalan": "ca", "swahili": "sw",
}


def _registry():
    from babelmill.languages import load_registry

    return load_registry()


def _registry_codes() -> set[str]:
    reg = _registry()
    codes = reg.codes() if callable(reg.codes) else reg.codes
    return set(codes)


def language_code(value: str) -> str:
    """A language code for a code or an English language name ('Bulgarian' -> 'bg')."""
    v = value.strip()
    codes = _registry_codes()
    if v.lower() in codes:
        return v.lower()
    reg = _registry()
    for c in codes:
        if reg.get(c).name.lower() == v.lower():
            return c
    if v.lower() in _EXTRA_LANGUAGE_NAMES:
        return _EXTRA_LANGUAGE_NAMES[v.lower()]
    if re.fullmatch(r"[a-z]{2,3}", v):
        return v
    raise ValueError(f"unknown language {value!r}")


def _lang_from_stem(path: Path) -> str | None:
    stem = path.name.split(".")[0]
    return stem if stem in _registry_codes() or stem in _EXTRA_LANGUAGE_NAMES.values() else None


def benchmark_name(path: Path) -> str:
    """`udhr_mc/fr.jsonl` -> 'udhr_mc' (per-language files), `ARC-Easy-Test.flat.jsonl` -> 'ARC-Easy-Test'."""
    path = Path(path)
    if path.is_dir():
        return path.name
    if _lang_from_stem(path):
        return path.parent.name
    return path.name.split(".")[0]


@dataclass
class Benchmark:
    name: str
    items: list[MCItem]
    sources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        return sorted({it.lang for it in self.items})

    def by_lang(self) -> dict[str, list[MCItem]]:
        out: dict[str, list[MCItem]] = {}
        for it in self.items:
            out.setdefault(it.lang, []).append(it)
        return out

    def subset(self, langs: Iterable[str] | None = None, limit: int | None = None) -> Benchmark:
        keep = set(langs) if langs else None
        out, counts = [], {}
        for it in self.items:
            if keep is not None and it.lang not in keep:
                continue
            if limit is not None and counts.get(it.lang, 0) >= limit:
                continue
            counts[it.lang] = counts.get(it.lang, 0) + 1
            out.append(it)
        return Benchmark(self.name, out, list(self.sources), list(self.skipped))


# --------------------------------------------------------------------------- row normalisation
def _where(path: Path, line: int | None, kind: str = "line") -> str:
    """`file:line` for line-based formats (JSONL, CSV), `file (row N)` (0-based) for Parquet / JSON arrays."""
    if line is None:
        return str(path)
    return f"{path}:{line}" if kind == "line" else f"{path} (row {line})"


def _resolve_answer(ans, labels: list[str] | None, n: int, err, choices: tuple[str, ...] = ()) -> int:
    if ans is None or (isinstance(ans, str) and not ans.strip()):
        raise err("missing answer (`answer`, `answerKey` or `gold`)")
    if isinstance(ans, bool):
        raise err(f"answer {ans!r} is not an index or a letter")
    if isinstance(ans, (int, float)) and not isinstance(ans, bool):
        if int(ans) != ans:
            raise err(f"answer {ans!r} is not an integer index")
        idx = int(ans)
    elif isinstance(ans, str):
        a = ans.strip()
        if labels and a in labels:
            idx = labels.index(a)
        elif len(a) == 1 and a.upper() in LETTERS and not a.isdigit():
            idx = LETTERS.index(a.upper())
        elif a.lstrip("-").isdigit():
            idx = int(a)
        elif a in choices:  # some dumps give the answer as the option's text
            idx = choices.index(a)
        else:
            raise err(f"answer {ans!r} is neither an index, a letter nor one of the labels {labels}")
    else:
        raise err(f"answer {ans!r} is not an index or a letter")
    if not 0 <= idx < n:
        raise err(f"answer {ans!r} -> index {idx} out of range for {n} choices")
    return idx


def normalise_row(row: dict, *, path: Path, line: int | None, index: int, default_lang: str,
                  subject: str = "", kind: str = "line") -> MCItem:
    """One benchmark row in any supported shape -> MCItem (raises BenchmarkError with the location)."""
    rid = row.get("id", row.get("question_id", row.get("idx")))
    shown_id = str(rid) if rid is not None else f"#{index}"

    def err(msg: str) -> BenchmarkError:
        return BenchmarkError(f"{_where(path, line, kind)}: item {shown_id!r}: {msg}")

    if not isinstance(row, dict):
        raise err(f"expected an object, got {type(row).__name__}")
    q = row.get("question")
    choices_raw = row.get("choices")
    labels = None
    if isinstance(q, dict):  # ARC / EXAMS
        choices_raw = q.get("choices", choices_raw)
        q = q.get("stem")
    if q is None:
        q = row.get("query") or row.get("stem")
    if not isinstance(q, str) or not q.strip():
        raise err("missing or empty question (`question` or `question.stem`)")
    if isinstance(choices_raw, dict):  # HF ARC: {text: [...], label: [...]}
        texts, labels = choices_raw.get("text"), choices_raw.get("label")
        choices_raw = texts
        labels = [str(x) for x in labels] if labels is not None else None
    elif isinstance(choices_raw, list) and choices_raw and isinstance(choices_raw[0], dict):
        try:
            labels = [str(c["label"]) for c in choices_raw]
            choices_raw = [c["text"] for c in choices_raw]
        except KeyError as e:
            raise err(f"choice without {e.args[0]!r}") from None
    if choices_raw is None and all(k in row for k in ("A", "B")):
        choices_raw = [row[k] for k in LETTERS if k in row]
    if hasattr(choices_raw, "tolist"):
        choices_raw = choices_raw.tolist()
    if not isinstance(choices_raw, (list, tuple)):
        raise err("missing choices (`choices` or `question.choices`)")
    choices = tuple("" if c is None else str(c) for c in choices_raw)
    if len(choices) < 2:
        raise err(f"needs at least 2 choices, has {len(choices)}")
    if any(not c.strip() for c in choices):
        raise err("has an empty choice")
    if labels is not None and len(labels) != len(choices):
        raise err("labels and choices differ in length")
    if "gold" in row and row["gold"] is not None:
        ans = row["gold"]
    elif row.get("answerKey") not in (None, ""):
        ans = row["answerKey"]
    else:
        ans = row.get("answer", row.get("label"))
    gold = _resolve_answer(ans, labels, len(choices), err, choices)
    info = row.get("info") if isinstance(row.get("info"), dict) else {}
    lang_raw = row.get("lang") or row.get("language") or info.get("language")
    try:
        lang = language_code(lang_raw) if lang_raw else default_lang
    except ValueError as e:
        raise err(str(e)) from None
    subj = row.get("subject") or info.get("subject") or subject or ""
    item_id = str(rid) if rid is not None else f"{path.name.split('.')[0]}-{index}"
    return MCItem(id=item_id, lang=lang, question=q.strip(), choices=choices, gold=gold, subject=str(subj))


# --------------------------------------------------------------------------- file readers
def _rows_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    with open(path, encoding="utf-8") as f:
        for ln, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield ln, json.loads(raw)
            except json.JSONDecodeError as e:
                raise BenchmarkError(f"{path}:{ln}: not valid JSON ({e.msg})") from None


def _rows_json(path: Path) -> Iterator[tuple[int, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise BenchmarkError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if isinstance(data, dict):
        data = data.get("data") or data.get("items") or data.get("rows") or []
    yield from enumerate(data)


def _rows_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    i = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            yield i, row
            i += 1


def _mmlu_subject(path: Path) -> str:
    return re.sub(r"_(test|dev|val|validation|train)$", "", path.stem)


def _items_csv(path: Path, default_lang: str) -> Iterator[tuple[MCItem | BenchmarkError, str]]:
    subject = _mmlu_subject(path)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        for i, rec in enumerate(reader):
            ln = reader.line_num
            where = f"{path}:{ln}"
            if not rec or all(not c.strip() for c in rec):
                continue
            if len(rec) < 4:
                yield BenchmarkError(f"{where}: item '{subject}-{i}': expected question, >=2 choices, answer; "
                                     f"got {len(rec)} fields"), where
                continue
            row = {"id": f"{subject}-{i}", "question": rec[0], "choices": rec[1:-1], "answer": rec[-1]}
            try:
                yield normalise_row(row, path=path, line=ln, index=i, default_lang=default_lang, subject=subject), where
            except BenchmarkError as e:
                yield e, where


def _iter_located(path: Path, lang: str | None) -> Iterator[tuple[MCItem | BenchmarkError, str]]:
    """(item or the error it raised, where it is) for every row of one file."""
    path = Path(path)
    if not path.is_file():
        raise BenchmarkError(f"{path}: benchmark file not found")
    default_lang = lang or _lang_from_stem(path) or "und"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _items_csv(path, default_lang)
        return
    if suffix == ".jsonl":
        rows, kind = _rows_jsonl(path), "line"
    elif suffix == ".json":
        rows, kind = _rows_json(path), "row"
    elif suffix == ".parquet":
        rows, kind = _rows_parquet(path), "row"
    else:
        raise BenchmarkError(f"{path}: unknown benchmark format {suffix!r}; use one of {SUFFIXES}")
    for i, (loc, row) in enumerate(rows):
        where = _where(path, loc, kind)
        if not isinstance(row, dict):
            yield BenchmarkError(f"{where}: item #{i}: expected a JSON object"), where
            continue
        try:
            yield normalise_row(row, path=path, line=loc, index=i, default_lang=default_lang, kind=kind), where
        except BenchmarkError as e:
            yield e, where


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise BenchmarkError(f"{path}: no benchmark files ({', '.join(SUFFIXES)}) in this folder")
        return files
    return [path]


def load_benchmark(path: str | Path, lang: str | None = None, name: str | None = None,
                   skip_bad: bool = False) -> Benchmark:
    """A file, or a folder of per-language files (`<lang>.jsonl`), as one Benchmark.

    A malformed item or a duplicate id (within a language) raises BenchmarkError naming the place;
    with `skip_bad` such items are logged and left out instead (real dumps have a few: EXAMS has
    answer keys like '@'); the skipped errors are kept in `Benchmark.skipped`.
    """
    path = Path(path)
    if not path.exists():
        raise BenchmarkError(f"{path}: benchmark not found")
    items: list[MCItem] = []
    skipped: list[str] = []
    seen: dict[tuple[str, str], str] = {}
    files = _files(path)
    for f in files:
        for it, where in _iter_located(f, lang):
            if isinstance(it, MCItem):
                key = (it.lang, it.id)
                if key in seen:
                    it = BenchmarkError(f"{where}: item {it.id!r}: duplicate id (language {it.lang}), "
                                        f"first seen at {seen[key]}")
                else:
                    seen[key] = where
                    items.append(it)
                    continue
            if not skip_bad:
                raise it
            log.warning("skipping bad item: %s", it)
            skipped.append(str(it))
    if not items:
        raise BenchmarkError(f"{path}: benchmark has no items")
    return Benchmark(name or benchmark_name(path), items, [str(f) for f in files], skipped)


def load_benchmarks(paths: Iterable[str | Path], skip_bad: bool = False) -> list[Benchmark]:
    """Several --benchmark arguments; files that share a benchmark name (translations) are merged."""
    merged: dict[str, Benchmark] = {}
    for p in paths:
        b = load_benchmark(p, skip_bad=skip_bad)
        if b.name in merged:
            old = merged[b.name]
            seen = {(it.lang, it.id) for it in old.items}
            dup = next((it for it in b.items if (it.lang, it.id) in seen), None)
            if dup is not None:
                raise BenchmarkError(f"{p}: item {dup.id!r}: duplicate id (language {dup.lang}) across files of benchmark {b.name!r}")
            merged[b.name] = Benchmark(b.name, old.items + b.items, old.sources + b.sources, old.skipped + b.skipped)
        else:
            merged[b.name] = b
    return list(merged.values())


def save_jsonl(items: Iterable[MCItem], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for it in items:
            f.write(json.dumps(it.to_json(), ensure_ascii=False) + "\n")
    return path
