"""fastText quality classifiers: a directory of models, and training one per language (or one
multilingual one) with held-out precision and recall written next to each model.

    DIR/<lang>.bin | <lang>.ftz        the language's classifier
    DIR/multilingual.bin | .ftz        used for languages that have no classifier of their own
    DIR/<name>.metrics.json            written by `babelmill quality-model train`: held-out
                                       precision/recall/F1/AUC, training sizes and parameters,
                                       and how text was prepared ("preprocess"), which the
                                       scorer then applies too

`quality_score` = the model's probability of the positive label (`__label__hq` for models
trained here; any label of a model trained elsewhere via the stage's `positive_label`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from babelmill.pipeline.quality_models.text import fasttext_lines
from babelmill.yamlconf import ConfigError

MULTILINGUAL = "multilingual"
MODEL_SUFFIXES = ("bin", "ftz")
METRICS_SUFFIX = "metrics.json"
POSITIVE, NEGATIVE = "hq", "lq"


@dataclass(frozen=True)
class ClassifierFiles:
    name: str  # a language code or "multilingual"
    model: Path
    metrics: Path | None = None

    def read_metrics(self) -> dict:
        if self.metrics is None:
            return {}
        try:
            doc = json.loads(self.metrics.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"{self.metrics}: unreadable classifier metrics: {e}") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{self.metrics}: classifier metrics must be a JSON object")
        return doc


def find_classifiers(directory: str | Path, what: str = "quality_classifier") -> dict[str, ClassifierFiles]:
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{what}: classifier directory {d} not found (expected <lang>.bin files; "
                          "train them with `babelmill quality-model train`)")
    found: dict[str, dict[str, Path]] = {}
    for p in sorted(d.iterdir()):
        if not p.is_file():
            continue
        name, _, suffix = p.name.partition(".")
        if name and suffix in (*MODEL_SUFFIXES, METRICS_SUFFIX):
            found.setdefault(name, {})[suffix] = p
    out = {}
    for name, files in found.items():
        model = next((files[s] for s in MODEL_SUFFIXES if s in files), None)
        if model is not None:
            out[name] = ClassifierFiles(name, model, files.get(METRICS_SUFFIX))
    return out


FASTTEXT_MAGIC, FASTTEXT_VERSION = 793712314, 12


def fasttext_file_problem(path: Path) -> str | None:
    """What is wrong with a fastText model file, by walking its layout (fastText's
    FastText::saveModel: magic, version, Args, Dictionary, input matrix, output matrix, dense
    or product-quantized) without loading it; None when it is complete. fastText's own loader
    reads a truncated file without complaint and fills the missing rows with whatever memory
    held, so the size must be checked here."""
    import struct

    size = path.stat().st_size
    with open(path, "rb") as f:
        def read(n: int) -> bytes:
            b = f.read(n)
            if len(b) != n:
                raise EOFError
            return b

        try:
            magic, version = struct.unpack("<ii", read(8))
            if magic != FASTTEXT_MAGIC:
                return "not a fastText model (wrong magic number)"
            if version != FASTTEXT_VERSION:
                return None  # another format version: leave it to fastText
            read(56)  # Args: 12 int32 + double
            n_entries, _nwords, _nlabels = struct.unpack("<iii", read(12))
            _ntokens, prune = struct.unpack("<qq", read(16))
            for _ in range(n_entries):
                while True:
                    chunk = f.read(256)
                    if not chunk:
                        raise EOFError
                    z = chunk.find(b"\0")
                    if z >= 0:
                        f.seek(z + 1 - len(chunk), 1)
                        break
                read(9)  # int64 count + int8 type
            if prune > 0:
                read(8 * prune)
            for _ in range(2):  # input, then output matrix
                quant = read(1) != b"\0"
                if not quant:
                    m, n = struct.unpack("<qq", read(16))
                    f.seek(4 * m * n, 1)
                else:
                    qnorm = read(1) != b"\0"
                    m, _n = struct.unpack("<qq", read(16))
                    (codesize,) = struct.unpack("<i", read(4))
                    f.seek(codesize, 1)
                    for pq in range(2 if qnorm else 1):
                        if pq:
                            f.seek(m, 1)  # norm codes
                        dim, _nsubq, _dsub, _last = struct.unpack("<iiii", read(16))
                        f.seek(4 * dim * 256, 1)  # centroids: dim x ksub (256) floats
        except EOFError:
            return "truncated"
        pos = f.tell()
    if pos != size:
        return "truncated" if pos > size else f"{size - pos} unexpected bytes after the model"
    return None


def load_fasttext(path: Path, what: str = "quality_classifier"):
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning
    if not path.is_file() or path.stat().st_size == 0:
        raise ConfigError(f"{what}: cannot load fastText model {path}: {'empty file' if path.is_file() else 'not a file'}")
    problem = fasttext_file_problem(path)
    if problem is not None:
        raise ConfigError(f"{what}: cannot load fastText model {path}: {problem}")
    try:
        return fasttext.load_model(str(path))
    except (ValueError, RuntimeError, MemoryError) as e:
        raise ConfigError(f"{what}: cannot load fastText model {path}: {e}") from None


def positive_probability(model, lines: list[str], positive: str) -> np.ndarray:
    """P(positive label) for each newline-terminated line (all labels predicted)."""
    if not lines:
        return np.zeros(0, dtype=np.float32)
    labels, probs = model.f.multilinePredict(lines, -1, 0.0, "strict")
    want = f"__label__{positive}"
    got = [ps[labs.index(want)] if want in labs else 0.0 for labs, ps in zip(labels, probs, strict=True)]
    return np.minimum(np.asarray(got, dtype=np.float32), 1.0)


# -- training ---------------------------------------------------------------------------------
@contextlib.contextmanager
def zeroed_allocations():
    """Make every malloc inside the block return zeroed memory (glibc M_PERTURB; yields whether
    it could).

    Why: fastText initialises only the first tenth of the input matrix per training thread
    (`DenseMatrix::uniformThread` splits it into 10 blocks and a run with `thread` threads fills
    `thread` of them), and the fasttext-numpy2 build does not zero the rest. With thread=1 (the
    only deterministic setting) the other 90% of rows hold whatever the heap held before:
    measured here, 11 of 20 identical trainings in one process ended in "Encountered NaN." and
    the others gave three different models. With fresh or zeroed memory those rows are zero, as
    in upstream fastText, and the same input and seed always give the same model."""
    libc = None
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
    if libc is None:
        yield False
        return
    m_perturb = -6  # malloc.h: allocated bytes = ~value's low byte (0xFF -> 0x00), freed bytes = value
    libc.mallopt(m_perturb, 0xFF)
    try:
        yield True
    finally:
        libc.mallopt(m_perturb, 0)


@dataclass(frozen=True)
class TrainParams:
    epoch: int = 10
    lr: float = 0.5
    dim: int = 32
    word_ngrams: int = 2
    min_count: int = 1
    bucket: int = 200_000
    max_chars: int = 10_000
    holdout: float = 0.2
    seed: int = 0


def _split(n: int, holdout: float, rng: random.Random) -> tuple[list[int], list[int]]:
    idx = list(range(n))
    rng.shuffle(idx)
    k = 0 if n < 2 else max(1, round(n * holdout))
    return idx[k:], idx[:k]


def auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (rank statistic, ties counted half)."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return None
    s = np.asarray(list(scores), dtype=np.float64)
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(ss):  # average ranks over ties
        j = i
        while j + 1 < len(ss) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    y = np.asarray(list(labels), dtype=bool)
    return float((ranks[y].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def held_out_metrics(scores: np.ndarray, labels: list[int], threshold: float = 0.5) -> dict:
    pred = scores >= threshold
    y = np.asarray(labels, dtype=bool)
    tp = int((pred & y).sum())
    fp = int((pred & ~y).sum())
    fn = int((~pred & y).sum())
    tn = int((~pred & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    if precision is None or recall is None:
        f1 = None
    else:
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    a = auc(scores.tolist(), labels)
    return {"threshold": threshold, "n": len(labels), "positive": int(y.sum()), "negative": int((~y).sum()),
            "precision": None if precision is None else round(precision, 4),
            "recall": None if recall is None else round(recall, 4),
            "f1": None if f1 is None else round(f1, 4),
            "accuracy": round((tp + tn) / len(labels), 4) if labels else None,
            "auc": None if a is None or math.isnan(a) else round(a, 4),
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def train_classifier(pos: list[tuple[str, bool]], neg: list[tuple[str, bool]], out_model: Path,
                     params: TrainParams = TrainParams(), extra: dict | None = None) -> dict:
    """Train on (text, space_delimited) positives and negatives; hold out `params.holdout` of
    each class (seeded) for precision/recall; save the model and `<name>.metrics.json`; return
    the metrics. Needs at least two documents per class."""
    import fasttext

    if len(pos) < 2 or len(neg) < 2:
        raise ValueError(f"need at least 2 positive and 2 negative documents (got {len(pos)} and {len(neg)})")
    t0 = time.perf_counter()
    rng = random.Random(params.seed)
    p_tr, p_te = _split(len(pos), params.holdout, rng)
    n_tr, n_te = _split(len(neg), params.holdout, rng)

    def lines(docs, idx):
        # group by spacing so each group is prepared in one vectorised pass
        out = [""] * len(idx)
        for spaced in (True, False):
            sel = [k for k, i in enumerate(idx) if docs[i][1] is spaced]
            if sel:
                got = fasttext_lines([docs[idx[k]][0] for k in sel], spaced, "babelmill", params.max_chars)
                for k, line in zip(sel, got, strict=True):
                    out[k] = line
        return out

    train = [(f"__label__{POSITIVE} ", s) for s in lines(pos, p_tr)] + [(f"__label__{NEGATIVE} ", s) for s in lines(neg, n_tr)]
    random.Random(params.seed + 1).shuffle(train)
    out_model = Path(out_model)
    out_model.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".train-", suffix=".txt", dir=out_model.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for label, s in train:
                f.write(label + s)
        try:
            with zeroed_allocations() as zeroed:
                model = fasttext.train_supervised(
                    input=tmp, epoch=params.epoch, lr=params.lr, dim=params.dim, wordNgrams=params.word_ngrams,
                    minCount=params.min_count, bucket=params.bucket, thread=1, seed=params.seed, verbose=0,
                    loss="softmax")
        except RuntimeError as e:  # fastText: "Encountered NaN." (diverged)
            raise ValueError(f"fastText training failed ({e}); try a lower learning rate (--lr) or fewer epochs") from None
    finally:
        os.unlink(tmp)
    tmp_model = out_model.with_name(out_model.name + ".tmp")
    model.save_model(str(tmp_model))
    tmp_model.replace(out_model)
    test_lines = lines(pos, p_te) + lines(neg, n_te)
    test_y = [1] * len(p_te) + [0] * len(n_te)
    scores = positive_probability(model, test_lines, POSITIVE)
    metrics = {
        "model": out_model.name,
        "labels": {"positive": f"__label__{POSITIVE}", "negative": f"__label__{NEGATIVE}"},
        "preprocess": {"kind": "babelmill", "max_chars": params.max_chars},
        "held_out": held_out_metrics(scores, test_y),
        "train": {"positive": len(p_tr), "negative": len(n_tr)},
        "params": {"epoch": params.epoch, "lr": params.lr, "dim": params.dim, "word_ngrams": params.word_ngrams,
                   "min_count": params.min_count, "bucket": params.bucket, "holdout": params.holdout,
                   "seed": params.seed, "loss": "softmax", "thread": 1, "zeroed_allocations": zeroed},
        "seconds": round(time.perf_counter() - t0, 3),
        **(extra or {}),
    }
    metrics_path = out_model.with_name(out_model.name.partition(".")[0] + "." + METRICS_SUFFIX)
    tmp_m = metrics_path.with_name(metrics_path.name + ".tmp")
    tmp_m.write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp_m.replace(metrics_path)
    return metrics
