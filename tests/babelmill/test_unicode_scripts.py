from babelmill.unicode_scripts import (
    SCRIPT_ID,
    dominant_script,
    dominant_scripts,
    script_counts,
    script_fractions,
)


def test_dominant_scripts_of_many_writing_systems():
    cases = {
        "Hello, world!": "Latn", "Привет, мир": "Cyrl", "مرحبا بالعالم": "Arab", "שלום עולם": "Hebr",
        "नमस्ते दुनिया": "Deva", "হ্যালো": "Beng", "வணக்கம்": "Taml", "สวัสดีครับ": "Thai", "ສະບາຍດີ": "Laoo",
        "សួស្តី": "Khmr", "မင်္ဂလာပါ": "Mymr", "你好世界": "Hani", "안녕하세요": "Hang", "Γειά σου": "Grek",
        "1234 !!! ...": "Zyyy", "": "Zyyy",
    }
    assert dominant_scripts(list(cases)) == list(cases.values())


def test_japanese_is_kanji_dominant_but_has_kana():
    text = "委員会は先週、北部の川の水質に関する年次報告書を発表しました。"
    fr = script_fractions(text)
    assert set(fr) == {"Hani", "Hira"} and fr["Hira"] > 0.2
    assert dominant_script(text) in ("Hani", "Hira")


def test_counts_ignore_common_and_respect_prefix():
    c = script_counts(["abc 123 абв", "абв" * 10], max_chars=3)
    assert c[0][SCRIPT_ID["Latn"]] == 3 and c[0][SCRIPT_ID["Cyrl"]] == 0
    assert c[1][SCRIPT_ID["Cyrl"]] == 3


def test_supplementary_han_and_astral_emoji():
    assert dominant_script("𠀀𠀁𠀂 😀😀😀😀") == "Hani"
