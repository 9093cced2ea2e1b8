"""Shared fixtures: small multilingual corpora made on the fly, one Ray session per test run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# A few sentences per language, enough for lid.176 to be confident.
SENTENCES = {
    "en": "The committee published its annual report on water quality in the northern rivers last week.",
    "fr": "Le comité a publié la semaine dernière son rapport annuel sur la qualité de l'eau des rivières du nord.",
    "de": "Der Ausschuss hat letzte Woche seinen Jahresbericht über die Wasserqualität der nördlichen Flüsse veröffentlicht.",
    "es": "El comité publicó la semana pasada su informe anual sobre la calidad del agua de los ríos del norte.",
    "ru": "На прошлой неделе комитет опубликовал ежегодный доклад о качестве воды в северных реках.",
    "zh": "委员会上周发布了关于北部河流水质的年度报告，报告指出污染程度有所下降。",
    "ja": "委員会は先週、北部の川の水質に関する年次報告書を発表しました。",
    "ar": "نشرت اللجنة الأسبوع الماضي تقريرها السنوي عن جودة المياه في الأنهار الشمالية.",
    "hi": "समिति ने पिछले सप्ताह उत्तरी नदियों में पानी की गुणवत्ता पर अपनी वार्षिक रिपोर्ट प्रकाशित की।",
    "th": "คณะกรรมการได้เผยแพร่รายงานประจำปีเกี่ยวกับคุณภาพน้ำในแม่น้ำทางภาคเหนือเมื่อสัปดาห์ที่แล้ว",
    "sw": "Kamati ilichapisha ripoti yake ya kila mwaka kuhusu ubora wa maji katika mito ya kaskazini wiki iliyopita.",
}


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    return path


def make_corpus(root: Path, files: int = 3, docs_per_lang: int = 2, bad_lines: bool = True) -> Path:
    """`files` JSONL files mixing all SENTENCES languages, plus (optionally) broken lines."""
    raw = root / "raw"
    for f in range(files):
        rows: list = []
        for lang, s in SENTENCES.items():
            for k in range(docs_per_lang):
                rows.append({"id": f"f{f}-{lang}-{k}", "text": f"{s} {s}", "meta": k})
        if bad_lines:
            rows.insert(3, '{"id": "broken", "text": ')  # malformed JSON
            rows.insert(5, {"id": f"f{f}-empty", "text": "   "})
        write_jsonl(raw / f"part-{f:03d}.jsonl", rows)
    return raw


@pytest.fixture
def corpus(tmp_path) -> Path:
    return make_corpus(tmp_path)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole test session (starting Ray costs ~10 s here)."""
    ray = pytest.importorskip("ray")
    from babelmill.pipeline.config import RayConfig
    from babelmill.pipeline.engines.ray_engine import ensure_ray

    ensure_ray(RayConfig(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture
def corpus_factory():
    """make_corpus(root, files=..., docs_per_lang=..., bad_lines=...)"""
    return make_corpus


@pytest.fixture
def jsonl_writer():
    return write_jsonl
