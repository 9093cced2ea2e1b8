import json

import numpy as np
import pytest
import yaml

from babelmill.cli import main
from babelmill.contamination.verdict_calibration import calibrate
from babelmill.contamination.verdicts import VerdictConfig, assess, cross_lingual, paired_bootstrap
from babelmill.yamlconf import ConfigError


def test_bootstrap_seeded_and_paired():
    rng = np.random.default_rng(1)
    o = rng.random(100) < 0.3
    g = o | (rng.random(100) < 0.4)
    a, b = paired_bootstrap(o, g, seed=5), paired_bootstrap(o, g, seed=5)
    assert a == b and a[0] <= g.mean() - o.mean() <= a[1]
    # identical results on both versions: the paired CI collapses to zero
    assert paired_bootstrap(o, o) == (0.0, 0.0)


def test_verdict_rule_follows_config():
    cfg = VerdictConfig.load()
    rng = np.random.default_rng(0)
    o = rng.random(60) < 0.3
    gain = o | (rng.random(60) < 0.6)
    assert assess(o, gain, cfg)["verdict"] == "clean"
    assert assess(o, o, cfg)["verdict"] == "contaminated"
    # no gain at chance level is not memorisation
    assert assess(o, o, cfg, chance=0.25)["verdict"] == "inconclusive"
    high = rng.random(60) < 0.9
    assert assess(high, high, cfg, chance=0.25)["verdict"] == "contaminated"
    assert assess(o[:10], o[:10], cfg)["verdict"] == "inconclusive"  # below min_items
    r = assess(o, gain, cfg)
    assert r["n"] == 60 and r["delta"] == pytest.approx(gain.mean() - o.mean())
    strict = VerdictConfig.load()
    strict.clean_above = 0.9
    assert assess(o, gain, strict)["verdict"] == "inconclusive"


def test_config_rejects_unknown_keys(tmp_path):
    p = tmp_path / "v.yaml"
    p.write_text("contaminated_below: 0.1\nthreshold: 3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        VerdictConfig.load(p)
    p.write_text("contaminated_below: [0.1\n")
    with pytest.raises(ConfigError, match=f"{p}:.*invalid YAML"):
        VerdictConfig.load(p)


def test_calibrate_from_clean_deltas(tmp_path):
    out = tmp_path / "cal.yaml"
    cfg = calibrate({"m1": 0.30, "m2": 0.22}, margin=0.05, out=out)
    assert cfg.contaminated_below == pytest.approx(0.17)
    back = VerdictConfig.load(out)
    assert back.contaminated_below == pytest.approx(0.17) and len(back.calibrated_on) == 2
    assert calibrate([0.01], margin=0.05).contaminated_below == 0.0
    assert main(["audit-calibrate", "--delta", "0.4", "--margin", "0.1", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["contaminated_below"] == pytest.approx(0.3)


def test_audit_calibrate_command(tmp_path, capsys):
    """`babelmill audit-calibrate` (was `python -m babelmill.contamination.detect calibrate`):
    deltas from audit JSONs, its options in --help, bad input as one line and exit code 2."""
    audit = tmp_path / "clean.json"
    audit.write_text(json.dumps({"model": "ref", "benchmarks": {
        "arc": {"languages": {"en": {"delta": 0.25}, "fr": {"delta": 0.2}, "th": {"delta": None}}}}}))
    out = tmp_path / "v.yaml"
    assert main(["audit-calibrate", "--from-json", str(audit), "--delta", "0.3", "--margin", "0.05",
                 "--out", str(out)]) == 0
    assert "from 3 clean deltas" in capsys.readouterr().out
    cfg = VerdictConfig.load(out)
    assert cfg.contaminated_below == pytest.approx(0.15)
    assert {c["model"] for c in cfg.calibrated_on} == {"cli0", "ref:arc:en", "ref:arc:fr"}
    with pytest.raises(SystemExit):
        main(["audit-calibrate", "--help"])
    helptext = capsys.readouterr().out
    assert all(o in helptext for o in ("--delta", "--from-json", "--margin", "--out", "--config"))
    (tmp_path / "junk.json").write_text("{}")
    for argv in (["--out", str(out)], ["--from-json", str(tmp_path / "junk.json"), "--out", str(out)],
                 ["--from-json", str(tmp_path / "missing.json"), "--out", str(out)]):
        assert main(["audit-calibrate", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("babelmill: error: ") and err.count("\n") == 1, err


def test_cross_lingual_points_at_memorised_language():
    per = {"en": {str(i): (i % 2 == 0, True) for i in range(30)}, "fr": {str(i): (True, True) for i in range(30)}}
    rows = {"en": {"delta": 0.5, "verdict": "clean"}, "fr": {"delta": 0.0, "verdict": "contaminated"}}
    x = cross_lingual(per, rows)
    assert x["memorised_language"] == "fr" and x["contaminated_languages"] == ["fr"]
    assert x["agreement"]["en-fr"]["agreement"] == pytest.approx(0.5)
