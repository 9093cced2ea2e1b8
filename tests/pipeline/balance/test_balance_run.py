"""Balancing a curated run end to end: realised shares, the epoch cap, seeds, engines, resume."""

from __future__ import annotations

import json
import math
import random

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from babelmill.pipeline.balance.config import BalanceConfig
from babelmill.pipeline.balance.run import BalanceStateError, run_balance
from babelmill.pipeline.config import PipelineConfig
from babelmill.pipeline.runner.run import run_pipeline

# An unbalanced corpus: documents per language span two orders of magnitude.
DOCS = {"en": 600, "fr": 250, "de": 120, "sw": 0, "th": 40, "km": 12}
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _doc(lang: str, i: int, rng: random.Random) -> dict:
    if lang in ("th", "km"):  # unspaced scripts: characters, no spaces
        base = "กขคงจฉชซ" if lang == "th" else "កខគឃងចឆជ"
        text = "".join(rng.choice(base) for _ in range(rng.randint(40, 400)))
    else:
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 300)))
    return {"id": f"{lang}-{i}", "text": text, "lang": lang}


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    root = tmp_path_factory.mktemp("bal")
    rng = random.Random(0)
    for f in range(3):  # three input files -> three work units
        rows = [_doc(lang, i, rng) for lang, n in DOCS.items() for i in range(n) if i % 3 == f]
        (root / "raw").mkdir(exist_ok=True)
        with open(root / "raw" / f"part-{f}.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    cfg = PipelineConfig.model_validate({
        "name": "bal", "input": {"paths": [str(root / "raw")], "extra_fields": ["lang"]},
        "output": {"dir": str(root / "run")}, "stages": [], "engine": {"name": "local"}})
    run_pipeline(cfg, quiet=True)
    return root / "run"


def _balanced(run, sub="balanced"):
    tables = [pq.read_table(p) for p in _files(run / sub)]
    return pa.concat_tables(tables)


def _files(d):
    return sorted(d.glob("data/*/*.parquet"))


def _balance(run, engine="local", sub="balanced", **kw):
    cfg = BalanceConfig(output_subdir=sub, **kw)
    return run_balance(run, cfg, engine=engine, quiet=True)


def test_realised_shares_match_plan_and_cap_holds(curated):
    rep = _balance(curated, policy="temperature", alpha=0.3, max_epochs=3, seed=1, sub="t1")
    t = _balanced(curated, "t1")
    total = pc.sum(t.column("n_tokens")).as_py()
    assert total == rep["realised_tokens"] == rep["totals"]["tokens_after"]
    for lang, v in rep["languages"].items():
        mine = t.filter(pc.equal(t.column("lang"), lang))
        share = pc.sum(mine.column("n_tokens")).as_py() / total
        assert abs(share - v["planned_share"]) < 0.01, lang
        assert share == pytest.approx(v["weight"])
        assert v["epochs"] <= 3 + 1e-9
        ids = pc.value_counts(mine.column("id"))
        assert max(ids.field("counts").to_pylist()) <= math.ceil(3)
    # low-resource languages were up-sampled, high-resource ones down-sampled
    assert rep["languages"]["km"]["epochs"] > 1 > rep["languages"]["en"]["epochs"]
    assert set(rep["languages"]) == {"en", "fr", "de", "th", "km"}
    assert rep["budget_tokens"] == rep["totals"]["tokens_before"]


def test_same_seed_same_output_other_seed_equally_balanced(curated):
    a = _balance(curated, seed=5, sub="s5a")
    b = _balance(curated, seed=5, sub="s5b")
    c = _balance(curated, seed=6, sub="s6")
    ta, tb, tc = (_balanced(curated, s) for s in ("s5a", "s5b", "s6"))
    assert ta.equals(tb)
    assert sorted(ta.column("id").to_pylist()) != sorted(tc.column("id").to_pylist())
    for lang in a["languages"]:
        assert a["languages"][lang] == {**b["languages"][lang]}
        assert abs(a["languages"][lang]["weight"] - c["languages"][lang]["weight"]) < 0.01


def test_rerun_reuses_and_config_change_needs_overwrite(curated):
    _balance(curated, seed=2, sub="rr")
    marker = next((curated / "rr" / "_units").glob("*.json"))
    mtime = marker.stat().st_mtime_ns
    _balance(curated, seed=2, sub="rr")
    assert marker.stat().st_mtime_ns == mtime  # finished units are skipped
    with pytest.raises(BalanceStateError, match="--overwrite"):
        _balance(curated, seed=3, sub="rr")
    rep = run_balance(curated, BalanceConfig(seed=3, output_subdir="rr"), quiet=True, overwrite=True)
    assert rep["config"]["seed"] == 3


def test_unknown_language_in_config_is_an_error(curated):
    with pytest.raises(ValueError, match="not in the registry"):
        _balance(curated, languages=["en", "xx"], sub="bad")


@pytest.mark.ray
@pytest.mark.beam
def test_engines_write_identical_balanced_corpora(curated, ray_session):
    base = None
    for engine in ("local", "ray", "beam"):
        rep = _balance(curated, engine=engine, seed=4, policy="unimax", max_epochs=2, sub=f"e-{engine}")
        t = _balanced(curated, f"e-{engine}")
        files = [p.relative_to(curated / f"e-{engine}").as_posix() for p in _files(curated / f"e-{engine}")]
        got = (t, files, {k: v["tokens_after"] for k, v in rep["languages"].items()})
        if base is None:
            base = got
        else:
            assert got[0].equals(base[0]) and got[1] == base[1] and got[2] == base[2], engine


def test_counts_tokens_with_a_project_tokenizer(curated, tmp_path):
    """`tokenizer: path/to/tokenizer.json` counts exact tokens of that tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator([" ".join(WORDS)] * 50, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    rep = _balance(curated, tokenizer=str(path), sub="tok")
    assert rep["token_counter"]["kind"] == "tokenizer" and len(rep["token_counter"]["sha256_16"]) == 16
    t = _balanced(curated, "tok")
    first = t.slice(0, 5).to_pylist()
    for row in first:
        assert row["n_tokens"] == len(tok.encode(row["text"], add_special_tokens=False).ids)


def _curate(root, name, **extra):
    cfg = PipelineConfig.model_validate({
        "name": name, "input": {"paths": [str(root / "raw")], "extra_fields": ["lang"]},
        "output": {"dir": str(root / name)}, "stages": [], "engine": {"name": "local"},
        "balance": {"seed": 1}, **extra})
    return run_pipeline(cfg, quiet=True)


@pytest.fixture
def small_raw(tmp_path):
    rng = random.Random(1)
    rows = [_doc(lang, i, rng) for lang in ("en", "fr", "km") for i in range(6)]
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                               encoding="utf-8")
    return tmp_path


def test_balance_uses_the_registry_of_the_run(small_raw, monkeypatch):
    """Balancing takes the run's registry from its manifest: the config's `languages:`, or
    $BABELMILL_LANGUAGES when the config names none (as every stage does), also when the balance
    is made later in a process whose environment says otherwise."""
    from tests.pipeline.custom_registry import write_registry

    no_km = write_registry(small_raw / "langs.yaml", drop=("km",))
    m = _curate(small_raw, "cfg", languages=str(no_km))
    rep = json.loads((small_raw / "cfg" / "balanced" / "balance.json").read_text())
    assert m["registry"]["path"] == str(no_km.resolve())
    assert set(rep["languages"]) == {"en", "fr"} and rep["excluded"] == {"km": 6}

    monkeypatch.setenv("BABELMILL_LANGUAGES", str(no_km))
    m = _curate(small_raw, "env")
    rep = json.loads((small_raw / "env" / "balanced" / "balance.json").read_text())
    assert m["registry"]["path"] == str(no_km.resolve()) and m["registry"]["source"] is None
    assert set(rep["languages"]) == {"en", "fr"} and rep["excluded"] == {"km": 6}

    monkeypatch.delenv("BABELMILL_LANGUAGES")  # a later balance: still the run's registry
    rep = run_balance(small_raw / "env", BalanceConfig(seed=2, output_subdir="later"), quiet=True)
    assert set(rep["languages"]) == {"en", "fr"} and rep["excluded"] == {"km": 6}
    with pytest.raises(ValueError, match="not in the registry"):
        run_balance(small_raw / "env", BalanceConfig(languages=["en", "km"], output_subdir="km"), quiet=True)
