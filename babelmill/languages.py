"""The language registry: the corpus's target languages and their per-language settings, as
data (configs/languages.yaml). Every language-specific decision in babelmill reads it, so a
user changes the language set or a threshold by editing YAML, not code."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from babelmill.paths import config_file
from babelmill.unicode_scripts import RANGES
from babelmill.yamlconf import ConfigError, load_model

DEFAULT_PATH = config_file("languages.yaml")
_KNOWN_SCRIPTS = set(RANGES)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Language(_Strict):
    code: str = Field(pattern=r"^[a-z]{2,3}$")
    iso639_3: str = Field(pattern=r"^[a-z]{3}$")
    name: str
    scripts: list[str] = Field(min_length=1)
    requires_script: list[str] = Field(default_factory=list)
    space_delimited: bool = True
    lid_labels: list[str] = Field(min_length=1)
    lid_threshold: float | None = Field(None, ge=0, le=1)
    confusable_group: str | None = None
    markers: str = ""
    wordfreq: str | None = None
    quality: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _scripts_known(self):
        bad = [s for s in [*self.scripts, *self.requires_script] if s not in _KNOWN_SCRIPTS]
        if bad:
            raise ValueError(f"unknown script code(s) {bad}; known: {sorted(_KNOWN_SCRIPTS)}")
        return self


class ConfusableGroup(_Strict):
    members: list[str] = Field(min_length=1)
    others: list[str] = Field(default_factory=list, description="non-target languages that compete")
    resolve: list[str] = Field(default_factory=list)
    skip_above: float = Field(1.01, description="fastText probability above which the group is not re-scored")

    @model_validator(mode="after")
    def _known_evidence(self):
        bad = [r for r in self.resolve if r not in ("script", "markers", "wordfreq")]
        if bad:
            raise ValueError(f"unknown evidence {bad}; use script, markers, wordfreq")
        return self


class Defaults(_Strict):
    lid_threshold: float = Field(0.5, ge=0, le=1)


class RegistryFile(_Strict):
    defaults: Defaults = Field(default_factory=Defaults)
    languages: list[Language] = Field(min_length=1)
    confusable_groups: dict[str, ConfusableGroup] = Field(default_factory=dict)


class LanguageRegistry:
    def __init__(self, data: RegistryFile, path: str = "<registry>"):
        self.path = path
        self.defaults = data.defaults
        self._langs: dict[str, Language] = {}
        for lang in data.languages:
            if lang.code in self._langs:
                raise ConfigError(f"{path}: languages: duplicate code '{lang.code}'")
            self._langs[lang.code] = lang
        self.groups = dict(data.confusable_groups)
        self._by_label: dict[str, str] = {}
        for lang in data.languages:
            for label in lang.lid_labels:
                if label in self._by_label and self._by_label[label] != lang.code:
                    raise ConfigError(f"{path}: LID label '{label}' claimed by {self._by_label[label]} and {lang.code}")
                self._by_label[label] = lang.code
            if lang.confusable_group and lang.confusable_group not in self.groups:
                raise ConfigError(f"{path}: {lang.code}: confusable_group '{lang.confusable_group}' is not defined")
        for name, g in self.groups.items():
            unknown = [m for m in g.members if m not in self._langs]
            if unknown:
                raise ConfigError(f"{path}: confusable_groups.{name}: members {unknown} are not target languages")
        self._by_iso3 = {lang.iso639_3: lang.code for lang in data.languages}

    # -- lookups ---------------------------------------------------------------------------
    @property
    def codes(self) -> list[str]:
        return list(self._langs)

    def __contains__(self, code: str) -> bool:
        return code in self._langs

    def __len__(self) -> int:
        return len(self._langs)

    def get(self, code: str) -> Language:
        try:
            return self._langs[code]
        except KeyError:
            raise KeyError(f"'{code}' is not a target language in {self.path}") from None

    def by_lid_label(self, label: str) -> str | None:
        """Target code for a LID label: lid.176 style (`ms`) or GlotLID/OpenLID (`zsm_Latn`)."""
        label = label.removeprefix("__label__")
        if label in self._by_label:
            return self._by_label[label]
        base = label.split("_", 1)[0]
        return self._by_label.get(base) or self._by_iso3.get(base)

    def scripts(self, code: str) -> list[str]:
        return self.get(code).scripts

    def is_space_delimited(self, code: str) -> bool:
        return self.get(code).space_delimited

    def threshold(self, code: str) -> float:
        t = self.get(code).lid_threshold
        return self.defaults.lid_threshold if t is None else t

    def group_of(self, code: str) -> str | None:
        if code in self._langs:
            return self._langs[code].confusable_group
        for name, g in self.groups.items():
            if code in g.others:
                return name
        return None


@lru_cache(maxsize=16)
def _load(path: str, mtime: float) -> LanguageRegistry:
    return LanguageRegistry(load_model(RegistryFile, path), path)


def load_registry(path: str | Path | None = None) -> LanguageRegistry:
    """The registry at `path`, else $BABELMILL_LANGUAGES, else configs/languages.yaml."""
    p = Path(path or os.environ.get("BABELMILL_LANGUAGES") or DEFAULT_PATH)
    if not p.is_file():
        raise ConfigError(f"{p}: language registry not found")
    return _load(str(p.resolve()), p.stat().st_mtime)
