"""The command line: `babelmill langid` scripting contract and error reporting."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from babelmill.cli import main


def test_langid_subcommand_jsonl_and_parquet(tmp_path, corpus, capsys):
    out = tmp_path / "langs.parquet"
    assert main(["langid", "--input", str(corpus), "--output", str(out), "--engine", "local"]) == 0
    t = pq.read_table(out)
    assert t.column_names == ["id", "lang", "lang_score", "script", "top_langs"]
    assert t.num_rows == 3 * 22  # all readable documents, annotated, none dropped
    by_id = dict(zip(t.column("id").to_pylist(), t.column("lang").to_pylist(), strict=True))
    assert by_id["f0-de-0"] == "de" and by_id["f1-th-1"] == "th" and by_id["f2-sw-0"] == "sw"
    assert (tmp_path / "langs.parquet.run" / "manifest.json").exists()
    # Parquet input
    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["Bonjour tout le monde, comment allez-vous aujourd'hui ?",
                                                        "Guten Morgen, wie geht es Ihnen heute?"]}), src)
    out2 = tmp_path / "p.parquet"
    assert main(["langid", "--input", str(src), "--output", str(out2), "--engine", "local"]) == 0
    assert pq.read_table(out2).column("lang").to_pylist() == ["fr", "de"]


def test_strict_error_names_file_and_line(tmp_path, jsonl_writer, capsys):
    p = jsonl_writer(tmp_path / "x.jsonl", [{"id": "1", "text": "fine text here"}, '{"id": 2, "text": '])
    rc = main(["langid", "--input", str(p), "--output", str(tmp_path / "o.parquet"), "--engine", "local", "--strict"])
    assert rc == 2
    assert f"{p}:2: bad_json" in capsys.readouterr().err


def test_run_with_bad_config_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("input: {paths: [x]}\noutput: {dir: o}\nengnie: local\n")
    assert main(["run", str(cfg)]) == 2
    assert f"{cfg}:3: engnie: unknown key" in capsys.readouterr().err


def test_dedup_subcommand_contract(tmp_path, jsonl_writer):
    text = "The committee published its annual report on the quality of water in the northern rivers. " * 4
    rows = [{"id": "a", "text": text}, {"id": "b", "text": text.upper()},
            {"id": "c", "text": text.replace("northern", "southern", 1)},
            {"id": "d", "text": "Something else entirely, about mountains and the weather in spring. " * 4}]
    src = jsonl_writer(tmp_path / "in.jsonl", rows)
    out = tmp_path / "dd"
    assert main(["dedup", "--input", str(src), "--output", str(out), "--engine", "local"]) == 0
    kept = pq.read_table(out / "output")
    assert sorted(kept.column("id").to_pylist()) == ["a", "d"]
    rej = {r["id"]: r for r in pq.read_table(out / "rejects").to_pylist()}
    assert rej["b"]["reason"] == "dup_exact" and rej["b"]["kept_id"] == "a"
    assert rej["c"]["reason"] == "dup_near" and rej["c"]["kept_id"] == "a"
    assert dict(zip(kept.column("id").to_pylist(), kept.column("cluster_size").to_pylist(), strict=True)) == {"a": 3, "d": 1}
