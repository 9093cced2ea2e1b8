"""Fixtures for the tokenizer tests: aligned sentences in 12 languages (parallel data) and
small JSONL corpora built from them, balanced or deliberately skewed towards English."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

# Three aligned sentences per language (line i means the same in every language).
PARALLEL = {
    "en": ["The committee published its annual report on water quality in the northern rivers last week.",
           "Everyone has the right to education, and elementary education shall be free.",
           "The train leaves the station at seven in the morning and arrives at noon."],
    "fr": ["Le comité a publié la semaine dernière son rapport annuel sur la qualité de l'eau des rivières du nord.",
           "Toute personne a droit à l'éducation, et l'enseignement élémentaire doit être gratuit.",
           "Le train quitte la gare à sept heures du matin et arrive à midi."],
    "de": ["Der Ausschuss hat letzte Woche seinen Jahresbericht über die Wasserqualität der nördlichen Flüsse veröffentlicht.",
           "Jeder hat das Recht auf Bildung, und der Grundschulunterricht muss unentgeltlich sein.",
           "Der Zug verlässt den Bahnhof um sieben Uhr morgens und kommt am Mittag an."],
    "es": ["El comité publicó la semana pasada su informe anual sobre la calidad del agua de los ríos del norte.",
           "Toda persona tiene derecho a la educación, y la instrucción elemental será gratuita.",
           "El tren sale de la estación a las siete de la mañana y llega al mediodía."],
    "ru": ["На прошлой неделе комитет опубликовал ежегодный доклад о качестве воды в северных реках.",
           "Каждый человек имеет право на образование, и начальное образование должно быть бесплатным.",
           "Поезд отправляется со станции в семь часов утра и прибывает в полдень."],
    "el": ["Η επιτροπή δημοσίευσε την περασμένη εβδομάδα την ετήσια έκθεσή της για την ποιότητα του νερού στα βόρεια ποτάμια.",
           "Καθένας έχει δικαίωμα στην εκπαίδευση, και η στοιχειώδης εκπαίδευση πρέπει να είναι δωρεάν.",
           "Το τρένο φεύγει από τον σταθμό στις επτά το πρωί και φτάνει το μεσημέρι."],
    "ar": ["نشرت اللجنة الأسبوع الماضي تقريرها السنوي عن جودة المياه في الأنهار الشمالية.",
           "لكل شخص الحق في التعليم، ويجب أن يكون التعليم الأولي مجانيا.",
           "يغادر القطار المحطة في الساعة السابعة صباحا ويصل عند الظهر."],
    "hi": ["समिति ने पिछले सप्ताह उत्तरी नदियों में पानी की गुणवत्ता पर अपनी वार्षिक रिपोर्ट प्रकाशित की।",
           "हर व्यक्ति को शिक्षा का अधिकार है, और प्रारंभिक शिक्षा निःशुल्क होगी।",
           "रेलगाड़ी सुबह सात बजे स्टेशन से निकलती है और दोपहर को पहुँचती है।"],
    "th": ["คณะกรรมการได้เผยแพร่รายงานประจำปีเกี่ยวกับคุณภาพน้ำในแม่น้ำทางภาคเหนือเมื่อสัปดาห์ที่แล้ว",
           "ทุกคนมีสิทธิในการศึกษา และการศึกษาขั้นพื้นฐานจะต้องไม่เสียค่าใช้จ่าย",
           "รถไฟออกจากสถานีเวลาเจ็ดโมงเช้าและถึงตอนเที่ยง"],
    "zh": ["委员会上周发布了关于北部河流水质的年度报告。",
           "人人都有受教育的权利，初级教育应当免费。",
           "火车早上七点离开车站，中午到达。"],
    "ja": ["委員会は先週、北部の川の水質に関する年次報告書を発表しました。",
           "すべての人は教育を受ける権利を有し、初等教育は無償でなければならない。",
           "列車は朝七時に駅を出発し、正午に到着します。"],
    "ko": ["위원회는 지난주 북부 강의 수질에 관한 연례 보고서를 발표했다.",
           "모든 사람은 교육을 받을 권리를 가지며, 초등 교육은 무상이어야 한다.",
           "기차는 아침 일곱 시에 역을 떠나 정오에 도착한다."],
}

# Text the tokenizers must give back exactly: digits, whitespace runs, emoji, NFC, other digits.
EDGE_CASES = [
    "Room 42 costs 1234.50 € — invoice 2024-01-31, +33 6 12 34 56 78.",
    "tabs\tand   multiple    spaces\n\n\nthree newlines  \n trailing   ",
    "   leading spaces and a lone tab\t",
    "emoji 😀👍🏽 👨‍👩‍👧 🇫🇷 ❤️ ok",
    "Ünïcödé café naïve Ñandú straße",
    "Thai digits ๑๒๓ and Arabic-Indic ٣٤٥ and Devanagari ४५६",
    "mixed: 東京タワーは333メートル、สวัสดีครับ, नमस्ते दुनिया, مرحبا",
    "",
]

DISTRACTOR = {"lang": "af", "text": "Almal het die reg op onderwys, en elementêre onderwys moet gratis wees."}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def make_corpus(root: Path, docs_per_lang: dict[str, int], seed: int = 0) -> Path:
    """One JSONL per language; each document is 1-3 shuffled fixture sentences of its language."""
    rng = random.Random(seed)
    for lang, n in docs_per_lang.items():
        rows = []
        for i in range(n):
            k = rng.randint(1, 3)
            text = " ".join(rng.sample(PARALLEL[lang], k))
            rows.append({"id": f"{lang}-{i}", "text": text, "lang": lang})
        write_jsonl(root / f"{lang}.jsonl", rows)
    write_jsonl(root / "distractor.jsonl", [DISTRACTOR] * 3)
    return root


def write_parallel(root: Path, langs=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for lang in langs or PARALLEL:
        (root / f"{lang}.txt").write_text("\n".join(PARALLEL[lang]) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tok_data(tmp_path_factory) -> dict[str, Path]:
    """Balanced and English-skewed corpora (~100:2 docs) plus the parallel set."""
    root = tmp_path_factory.mktemp("tokdata")
    balanced = make_corpus(root / "balanced", {lang: 20 for lang in PARALLEL})
    skew = {lang: (400 if lang == "en" else 8) for lang in PARALLEL}
    skewed = make_corpus(root / "skewed", skew)
    return {"balanced": balanced, "skewed": skewed, "parallel": write_parallel(root / "parallel"), "root": root}


@pytest.fixture(scope="session")
def trained(tok_data, tmp_path_factory) -> dict[str, Path]:
    """A BPE and a unigram tokenizer trained once on the balanced fixture corpus."""
    from babelmill.tokenizer.train import train

    out = tmp_path_factory.mktemp("trained")
    paths = {}
    for kind in ("bpe", "unigram"):
        train([str(tok_data["balanced"])], out / kind, vocab_size=1000, kind=kind)
        paths[kind] = out / kind
    return paths
