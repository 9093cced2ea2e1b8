"""The scripting contract: `babelmill tokenizer train/eval/compare` (registered by
babelmill.tokenizer.cli.register, errors handled by babelmill/cli.py)."""

from __future__ import annotations

import json

from babelmill.cli import main as run
from tests.tokenizer.conftest import PARALLEL


def test_train_then_eval(tok_data, tmp_path, capsys):
    out = tmp_path / "tok"
    assert run(["tokenizer", "train", "--input", str(tok_data["balanced"]), "--output", str(out),
                "--vocab-size", "600", "--temperature", "3", "--seed", "1"]) == 0
    meta = json.loads((out / "tokenizer_meta.json").read_text())
    # auto without --parallel: parity-aware BPE on the bundled dev set (it has all 12 fixture languages)
    assert (meta["vocab_size"], meta["temperature"], meta["seed"], meta["kind"]) == (600, 3.0, 1, "parity")
    assert meta["options"]["parity"]["parallel"] == "bundled:udhr-4,9,14,19,24"
    assert meta["dev_set"]["languages"] == sorted(PARALLEL) and "dev set bundled" in capsys.readouterr().out
    assert run(["tokenizer", "train", "--input", str(tok_data["balanced"]), "--output", str(tmp_path / "np"),
                "--vocab-size", "400", "--no-parallel"]) == 0
    assert json.loads((tmp_path / "np" / "tokenizer_meta.json").read_text())["kind"] == "bpe"  # no dev set at all
    assert run(["tokenizer", "train", "--input", str(tok_data["balanced"]), "--output", str(tmp_path / "sp"),
                "--vocab-size", "1000", "--sentencepiece"]) == 0
    assert (tmp_path / "sp" / "spm.model").is_file()
    # too small for the fixture's ~650 distinct characters: a clear error, exit code 2
    assert run(["tokenizer", "train", "--input", str(tok_data["balanced"]), "--output", str(tmp_path / "sp2"),
                "--vocab-size", "400", "--sentencepiece"]) == 2
    assert "--vocab-size" in capsys.readouterr().err

    js, html = tmp_path / "eval.json", tmp_path / "eval.html"
    assert run(["tokenizer", "eval", "--tokenizer", str(out / "tokenizer.json"), "--parallel",
                str(tok_data["parallel"]), "--json", str(js), "--html", str(html), "--quiet"]) == 0
    res = json.loads(js.read_text())
    for lang in ("en", "th", "zh"):
        r = res[lang]  # OUT.json maps language -> figures
        assert {"tokens_per_char", "parity", "bytes_fallback_rate"} <= set(r)
    assert res["_summary"]["worst_parity"] >= 1.0 and "_vocab_by_script" in res
    assert html.read_text().startswith("<!doctype html>")
    assert "worst parity" in capsys.readouterr().out


def test_errors_exit_2_with_the_file_named(tok_data, tmp_path, capsys):
    par = tmp_path / "par"
    par.mkdir()
    (par / "en.txt").write_text("one\ntwo\n")
    (par / "fr.txt").write_text("un\n")
    (tmp_path / "t").mkdir()
    from babelmill.tokenizer.train_bpe import train_bpe

    train_bpe([["one two"]], 300, ["<pad>"]).save(str(tmp_path / "t" / "tokenizer.json"))
    rc = run(["tokenizer", "eval", "--tokenizer", str(tmp_path / "t" / "tokenizer.json"), "--parallel", str(par),
              "--json", str(tmp_path / "e.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "fr.txt" in err and "en.txt" in err and err.startswith("babelmill: error: ")
    assert run(["tokenizer", "train", "--input", str(tmp_path / "missing"), "--output", str(tmp_path / "o")]) == 2
    capsys.readouterr()
    # the trainer's own checks are domain errors too (babelmill.tokenizer.corpus.TokenizerError)
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"text": "some words", "lang": "xx-none"}) + "\n")
    for argv, what in ((["--input", str(other)], "no documents in a target language"),
                       (["--input", str(tok_data["balanced"]), "--vocab-size", "100"], "too small")):
        assert run(["tokenizer", "train", *argv, "--output", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("babelmill: error: ") and what in err and err.count("\n") == 1, err
