import pytest

from babelmill.languages import load_registry
from babelmill.yamlconf import ConfigError

FUXI_43 = "ar bg bn ca cs de el en es fa fi fr he hi hu id it ja kk km ko ku ky lo ms my nl pl pt ro ru sv ta tg th tk tl tr uk ur uz vi zh".split()


def test_default_registry_has_the_43_languages_with_scripts():
    reg = load_registry()
    assert sorted(reg.codes) == sorted(FUXI_43)
    for code in FUXI_43:
        assert reg.scripts(code), code
        assert 0 < reg.threshold(code) <= 1
    assert {c for c in FUXI_43 if not reg.is_space_delimited(c)} == {"zh", "ja", "th", "lo", "km", "my"}


def test_lid_label_mapping():
    reg = load_registry()
    assert reg.by_lid_label("__label__wuu") == "zh"
    assert reg.by_lid_label("ckb") == "ku"
    assert reg.by_lid_label("zsm_Latn") == "ms"  # GlotLID/OpenLID style via ISO 639-3
    assert reg.by_lid_label("sw") is None
    assert reg.group_of("sk") == "czech_slovak" and reg.group_of("de") is None


def _write(tmp_path, body):
    p = tmp_path / "langs.yaml"
    p.write_text(body)
    return p


def test_unknown_key_is_named_with_file_and_line(tmp_path):
    p = _write(tmp_path, "languages:\n  - code: en\n    iso639_3: eng\n    name: English\n    scripts: [Latn]\n"
                         "    lid_labels: [en]\n    threshold: 0.3\n")
    with pytest.raises(ConfigError) as e:
        load_registry(p)
    assert f"{p}:7: languages.0.threshold: unknown key" in str(e.value)


def test_duplicate_code_and_unknown_script_rejected(tmp_path):
    entry = "  - {code: en, iso639_3: eng, name: English, scripts: [Latn], lid_labels: [en]}\n"
    with pytest.raises(ConfigError, match="duplicate code 'en'"):
        load_registry(_write(tmp_path, "languages:\n" + entry + entry.replace("[en]}", "[eng]}")))
    with pytest.raises(ConfigError, match="unknown script"):
        load_registry(_write(tmp_path, "languages:\n" + entry.replace("Latn", "Klingon")))


def test_env_var_selects_registry(tmp_path, monkeypatch):
    p = _write(tmp_path, "languages:\n  - {code: en, iso639_3: eng, name: English, scripts: [Latn], lid_labels: [en]}\n")
    monkeypatch.setenv("BABELMILL_LANGUAGES", str(p))
    assert load_registry().codes == ["en"]
