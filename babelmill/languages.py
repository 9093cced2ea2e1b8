"""The language registry: the corpus's target languages and their per-language settings, as
data (configs/languages.yaml). Every language-specific decision in babelmill reads it, so a
user changes the language set or a threshold by editing YAML, not code."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator
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


#: The registry a run made current for code that takes no registry argument (see use_registry).
_ACTIVE: contextvars.ContextVar[str | None] = contextvars.ContextVar("babelmill_active_registry", default=None)


@contextlib.contextmanager
def use_registry(path: str | Path | None) -> Iterator[None]:
    """Within the block, `load_registry()` without a path (in this thread or task) means `path`.

    Most code is handed its registry (a stage gets the run's from its RunContext). Helpers that
    look it up themselves with `load_registry()` (the contamination n-gram index and benchmark
    loaders, built by the decontaminate stage) follow the run's `languages:` this way instead of
    $BABELMILL_LANGUAGES. A context variable rather than the environment: it is undone on exit
    and does not leak into other threads or into child processes."""
    token = _ACTIVE.set(str(path) if path is not None else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def registry_path(path: str | Path | None = None) -> Path:
    """The registry file `load_registry(path)` reads, as an absolute path: `path`, else the one
    made current by use_registry, else $BABELMILL_LANGUAGES, else configs/languages.yaml."""
    p = Path(path or _ACTIVE.get() or os.environ.get("BABELMILL_LANGUAGES") or DEFAULT_PATH)
    if not p.is_file():
        raise ConfigError(f"{p}: language registry not found")
    return p.resolve()


@lru_cache(maxsize=16)
def _fingerprint(path: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def registry_fingerprint(path: str | Path | None = None) -> str:
    """Hash of the registry file's bytes (16 hex digits): recorded in a run's manifest, so that
    later steps (and workers) can tell whether the file they read is the one the run used."""
    p = registry_path(path)
    st = p.stat()
    return _fingerprint(str(p), st.st_mtime_ns, st.st_size)


def load_registry(path: str | Path | None = None) -> LanguageRegistry:
    """The registry at `path`, else the one made current by `use_registry` (a run's), else
    $BABELMILL_LANGUAGES, else configs/languages.yaml. Parsed once per file version."""
    p = registry_path(path)
    return _load(str(p), p.stat().st_mtime)
