"""n-gram overlap audit: which benchmark items occur verbatim (after normalisation) in a corpus.

This is the check that *cannot* see a translated benchmark - which is why the choice-swap test
exists - but it is cheap, explains itself (the matching n-gram is the evidence) and finds plain
copies in the training data.

Index: for each item, the n-grams of its question followed by its gold answer (so n-grams inside
either part and across the boundary), in the item's language; word n-grams for space-delimited
languages, character n-grams otherwise (the registry decides, see configs/contamination/ngram.yaml).
A question shorter than n is also indexed whole.
Keys are the n-gram strings themselves, not Python hashes, so the index pickles to Ray/Beam
workers and matches there (Python's str hash is salted per process).

Scan: `scan_record_batch(batch, index)` is a pure function over a pyarrow.RecordBatch with a `text`
column that returns the batch plus `contam_items` (list<string>, "lang:id") and `contam_ngrams`
(int64, number of matching n-gram positions), for use as a pipeline stage;
`scan_corpus(paths, index)` is the in-process scan over JSONL/Parquet files or folders, read
through the pipeline's readers (`read_corpus`): a crawl has broken lines, and the scan is an
estimate, so by default they are quarantined and counted per file in the result's
`quarantined` (never dropped without a word); `on_bad="strict"` makes the first one an
InputError naming its file:line.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from babelmill.contamination.items import MCItem
from babelmill.paths import config_file
from babelmill.pipeline.io.readers import OnBad, Quarantine, ReadOptions, WorkUnit, plan_units, read_corpus
from babelmill.text import normalize_for_contamination
from babelmill.yamlconf import ConfigError, read_mapping

DEFAULT_CONFIG = config_file("contamination", "ngram.yaml")


@dataclass(frozen=True)
class NgramConfig:
    word_n: int = 8
    char_n: int = 13
    min_words: int = 4
    min_chars: int = 8
    index_answers: bool = True

    @classmethod
    def load(cls, path: str | Path | None = None) -> NgramConfig:
        p = Path(path or DEFAULT_CONFIG)
        d = read_mapping(p, "n-gram settings")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"{p}: unknown keys {sorted(unknown)}")
        return cls(**d)


#: NFKC, casefold, punctuation/symbols/invisibles to spaces (babelmill/text.py holds it beside
#: dedup's normaliser, with why the two differ)
normalize = normalize_for_contamination


def _space_delimited(lang: str) -> bool:
    from babelmill.languages import load_registry

    reg = load_registry()
    return reg.is_space_delimited(lang) if lang in reg else True


@lru_cache(maxsize=256)
def _allowed_script_ids(lang: str) -> frozenset[int] | None:
    from babelmill.languages import load_registry
    from babelmill.unicode_scripts import COMMON, SCRIPT_ID

    reg = load_registry()
    if lang not in reg:
        return None
    return frozenset({SCRIPT_ID[s] for s in reg.scripts(lang) if s in SCRIPT_ID} | {SCRIPT_ID[COMMON]})


def native_runs(norm: str, lang: str) -> list[str]:
    """The text (spaces removed) cut into runs of the language's own scripts (plus Common: digits,
    marks). Character n-grams are taken within runs only, so an English template around Chinese
    options ("Complete the statement ...") does not make Chinese items match English documents."""
    allowed = _allowed_script_ids(lang)
    s = norm.replace(" ", "")
    if allowed is None:
        return [s]
    from babelmill.unicode_scripts import TABLE

    runs, cur = [], []
    for ch in s:
        if TABLE[ord(ch)] in allowed:
            cur.append(ch)
        elif cur:
            runs.append("".join(cur))
            cur = []
    if cur:
        runs.append("".join(cur))
    return runs


def word_ngrams(norm: str, n: int) -> list[str]:
    w = norm.split()
    return [" ".join(w[i : i + n]) for i in range(len(w) - n + 1)]


def char_ngrams(norm: str, n: int) -> list[str]:
    s = norm.replace(" ", "")
    return [s[i : i + n] for i in range(len(s) - n + 1)]


@dataclass
class NgramIndex:
    """n-gram string -> item keys ("lang:id"), split by kind (word/char) and length."""

    cfg: NgramConfig
    word: dict[int, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    char: dict[int, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(dict))
    items: dict[str, dict] = field(default_factory=dict)  # key -> {lang, id, benchmark}

    def __getstate__(self):
        return {"cfg": self.cfg, "word": {k: dict(v) for k, v in self.word.items()},
                "char": {k: dict(v) for k, v in self.char.items()}, "items": self.items}

    def __setstate__(self, s):
        self.cfg, self.items = s["cfg"], s["items"]
        self.word, self.char = defaultdict(dict, s["word"]), defaultdict(dict, s["char"])

    def _add(self, table, n, grams, key):
        for g in grams:
            keys = table[n].setdefault(g, [])
            if key not in keys:
                keys.append(key)

    def add(self, item: MCItem, benchmark: str = "") -> None:
        key = f"{benchmark + ':' if benchmark else ''}{item.lang}:{item.id}"
        self.items[key] = {"benchmark": benchmark, "lang": item.lang, "id": item.id}
        # the question and the answer joined: a training document that copies the item has the
        # statement run on from question into answer (a cloze item, a quiz page), so n-grams that
        # span the boundary count as much as those inside either part
        text = item.question + (" " + item.answer if self.cfg.index_answers else "")
        q_norm, norm = normalize(item.question), normalize(text)
        if _space_delimited(item.lang):
            if len(norm.split()) >= self.cfg.word_n:
                self._add(self.word, self.cfg.word_n, word_ngrams(norm, self.cfg.word_n), key)
            n_q = len(q_norm.split())
            if self.cfg.min_words <= n_q < self.cfg.word_n:  # a short question is evidence on its own
                self._add(self.word, n_q, [q_norm], key)
        else:
            for run in native_runs(norm, item.lang):
                if len(run) >= self.cfg.char_n:
                    self._add(self.char, self.cfg.char_n, char_ngrams(run, self.cfg.char_n), key)
            q_runs = native_runs(q_norm, item.lang)
            if len(q_runs) == 1 and self.cfg.min_chars <= len(q_runs[0]) < self.cfg.char_n:
                self._add(self.char, len(q_runs[0]), q_runs, key)

    @property
    def size(self) -> int:
        return sum(len(t) for t in self.word.values()) + sum(len(t) for t in self.char.values())

    def match(self, text: str) -> tuple[set[str], int]:
        """(item keys found in `text`, number of matching n-gram positions)."""
        norm = normalize(text)
        found: set[str] = set()
        hits = 0
        if self.word:
            words = norm.split()
            for n, table in self.word.items():
                for i in range(len(words) - n + 1):
                    keys = table.get(" ".join(words[i : i + n]))
                    if keys:
                        found.update(keys)
                        hits += 1
        if self.char:
            s = norm.replace(" ", "")
            for n, table in self.char.items():
                for i in range(len(s) - n + 1):
                    keys = table.get(s[i : i + n])
                    if keys:
                        found.update(keys)
                        hits += 1
        return found, hits


def build_index(items: Iterable[MCItem], benchmark: str = "", cfg: NgramConfig | None = None,
                index: NgramIndex | None = None) -> NgramIndex:
    index = index or NgramIndex(cfg or NgramConfig.load())
    for it in items:
        index.add(it, benchmark)
    return index


# --------------------------------------------------------------------------- the pure stage
def scan_record_batch(batch: pa.RecordBatch, index: NgramIndex, text_column: str = "text") -> pa.RecordBatch:
    """`batch` plus `contam_items` (list<string>) and `contam_ngrams` (int64); a pure function."""
    items, counts = [], []
    for text in batch.column(text_column).to_pylist():
        found, hits = index.match(text or "")
        items.append(sorted(found))
        counts.append(hits)
    cols = [c for c in batch.schema.names if c not in ("contam_items", "contam_ngrams")]
    arrays = [batch.column(c) for c in cols]
    return pa.RecordBatch.from_arrays(arrays + [pa.array(items, type=pa.list_(pa.string())), pa.array(counts, type=pa.int64())],
                                      names=cols + ["contam_items", "contam_ngrams"])


def make_stage(index: NgramIndex, text_column: str = "text"):
    """A picklable callable for Ray `map_batches(batch_format="pyarrow")` / a Beam DoFn body."""
    return _Stage(index, text_column)


class _Stage:
    def __init__(self, index: NgramIndex, text_column: str):
        self.index, self.text_column = index, text_column

    def __call__(self, batch):
        if isinstance(batch, pa.Table):
            rbs = [scan_record_batch(rb, self.index, self.text_column) for rb in batch.to_batches()]
            return pa.Table.from_batches(rbs) if rbs else batch
        return scan_record_batch(batch, self.index, self.text_column)


# --------------------------------------------------------------------------- corpus reading
def scan_corpus(paths: Iterable[str | Path], index: NgramIndex, batch_size: int = 1024, max_examples: int = 5,
                on_bad: OnBad = "quarantine") -> dict:
    """Overlap report: per benchmark x language, items found and documents containing them.

    Documents are attributed to the language of the item they contain (and, if the corpus has a
    `lang` column, also counted per document language under `docs_by_corpus_lang`).
    `quarantined`: the records not scanned (broken JSON or UTF-8, no text...), in total, by
    reason and per corpus file (every file read is listed, with 0 if it was clean);
    on_bad="strict" raises InputError at the first such record instead.
    """
    opts = ReadOptions(id_field="id", extra_fields=("lang",), batch_size=batch_size)
    paths = [str(p) for p in paths]
    units: list[WorkUnit] = plan_units(paths, opts) if paths else []
    files = list(dict.fromkeys(u.path for u in units))
    quarantine = Quarantine()
    item_docs: dict[str, int] = defaultdict(int)
    examples: dict[str, list[str]] = defaultdict(list)
    docs_by_lang: dict[tuple[str, str], int] = defaultdict(int)
    docs_by_corpus_lang: dict[str, int] = defaultdict(int)
    n_docs = n_hit_docs = 0
    for unit, rb in read_corpus(units, opts, on_bad=on_bad, quarantine=quarantine):
        name = Path(unit.path).name
        out = scan_record_batch(rb, index)
        found = out.column("contam_items").to_pylist()
        ids = out.column("id").to_pylist()
        langs = out.column("lang").to_pylist()
        for keys, did, dlang in zip(found, ids, langs, strict=True):
            n_docs += 1
            if not keys:
                continue
            n_hit_docs += 1
            if dlang:
                docs_by_corpus_lang[dlang] += 1
            for bl in {(index.items[k]["benchmark"], index.items[k]["lang"]) for k in keys}:
                docs_by_lang[bl] += 1
            for k in keys:
                item_docs[k] += 1
                if len(examples[k]) < max_examples:
                    examples[k].append(f"{name}:{did}")
    per: dict[str, dict[str, dict]] = {}
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for meta in index.items.values():
        totals[(meta["benchmark"], meta["lang"])] += 1
    for (bench, lang), total in sorted(totals.items()):
        hits = sorted(k for k in item_docs if index.items[k]["benchmark"] == bench and index.items[k]["lang"] == lang)
        per.setdefault(bench, {})[lang] = {
            "items": total, "items_overlapping": len(hits), "fraction": len(hits) / total if total else 0.0,
            "docs_overlapping": docs_by_lang.get((bench, lang), 0),
            "examples": {index.items[k]["id"]: examples[k] for k in hits[:20]},
        }
    return {"files": files, "docs_scanned": n_docs, "docs_overlapping": n_hit_docs,
            "quarantined": {"on_bad": on_bad, **quarantine.summary(files)},
            "docs_by_corpus_lang": dict(docs_by_corpus_lang), "benchmarks": per,
            "config": {"word_n": index.cfg.word_n, "char_n": index.cfg.char_n}}
