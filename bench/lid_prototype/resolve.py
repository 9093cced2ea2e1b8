"""Language-ID decision rule on top of a fastText top-k: a prototype for issue 13, NOT used by the
`langid` stage yet (it lives under bench/ until it meets the issue's floors; see the issue notes).

Pure functions over lists of texts plus the fastText top-k of each; all language-specific data
arrives as plain dicts (`LidData`, built from the registry fragment in bench/lid_prototype/proposal.yaml
or, later, from the registry itself), so nothing here names a language.

The rule, per document:

1. Map the fastText labels to target codes (`ft_labels`), add up labels that share a code and
   keep the candidates whose script fits the document (same script check as the `langid` stage).
2. Fast path (the great majority of documents): the best fitting candidate is a target, is not
   in a confusable group that needs resolving (or the document is long and the probability is
   >= the group's `skip_above`), and its probability is >= its `accept` threshold for the document's length
   class (`short` below `short_chars` characters, else `long`). Accept it; no other work.
   A non-target label with probability >= `other_accept` is `lang_other` at once.
3. Uncertain documents (low probability, or a label in a confusable group) get a second
   opinion from an optional identifier (`second_opinion`: a callable over a list of texts,
   loaded once per worker by the caller; HeLI-OTS through `heliport` in the prototype), called
   once per batch for just these documents, on their first `so_chars` characters.
   Candidates: the fitting fastText ones, the second opinion's top-k, and every member/other of
   the confusable groups involved. Each is scored

       w_ft(len) * ln(p_ft + eps)                     fastText, weaker on short text
     + w_so * max(-so_cap, best_so_score - so_score)  second opinion (HeLI raw score: lower is better)
     + marker_bonus  if a marker letter/pattern of the language is present
     - alien_penalty * (#distinct letters of the document's script outside its alphabet, <= 3)
     + wf_weight * (mean log10 word frequency - best)  for groups with `wordfreq` evidence

   The winner's softmax share over the candidates is its confidence; a target below its
   `reject` threshold (per language, per length class) is `lang_low_confidence`, a non-target
   winner is `lang_other`.

`resolve()` returns (codes, confidences, reasons, n_second_opinion) with reasons None for kept
documents. Nothing here loads a model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from babelmill.unicode_scripts import SCRIPT_ID, dominant_from_counts, script_counts

EPS = 0.005
_WORD = re.compile(r"\w+")
# Latin/IPA look-alikes typed inside Cyrillic words (Tatoeba's Kazakh has "дiни", "нəрсе")
_CYRL_LOOKALIKE = str.maketrans({"i": "і", "ə": "ә", "Ə": "Ә", "I": "І"})


@dataclass(frozen=True)
class LangData:
    scripts: tuple[str, ...]
    requires_script: tuple[str, ...] = ()
    group: str | None = None
    markers: str = ""                    # characters that are evidence for the language within its group
    marker_patterns: tuple[str, ...] = ()  # regexes, same role (e.g. Uzbek o' g')
    alphabet: dict[str, str] = field(default_factory=dict)  # script -> lowercase letters the orthography uses
    wordfreq: str | None = None
    accept: tuple[float, float] = (0.5, 0.5)  # fast-path fastText probability (short, long)
    reject: tuple[float, float] = (0.3, 0.3)  # minimum confidence after resolution (short, long)
    ft_floor: float = EPS                # p_fastText floor: larger for languages the model under-predicts


@dataclass(frozen=True)
class GroupData:
    members: tuple[str, ...]
    others: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()  # script, markers, letters, wordfreq, second_opinion
    skip_above: float = 1.01


@dataclass(frozen=True)
class Params:
    short_chars: int = 50
    w_ft: tuple[float, float] = (0.5, 1.0)  # (short, long)
    w_so: float = 1.5
    so_cap: float = 3.0
    so_k: int = 8
    so_chars: int = 300
    so_good: float = 3.5   # HeLI raw best score at/below which its opinion has full weight
    so_bad: float = 6.0    # ... at/above which it has none (text unlike anything it knows)
    so_other_k: int = 3    # non-target labels of the second opinion join the pool from its top so_other_k only
    marker_bonus: float = 1.5
    alien_penalty: float = 1.0
    wf_weight: float = 8.0
    wf_words: int = 40
    wf_floor: float = -8.0
    other_accept: float = 0.9


@dataclass
class LidData:
    langs: dict[str, LangData]
    groups: dict[str, GroupData]
    ft_labels: dict[str, str]            # fastText label (no __label__) -> target code
    so_labels: dict[str, tuple[str, ...]]  # second-opinion label -> target code(s) (HeLI `msa` -> ms, id)
    so_other: dict[str, str] = field(default_factory=dict)  # second-opinion label -> non-target code
    params: Params = field(default_factory=Params)

    def __post_init__(self):
        self._pat = {c: re.compile("|".join(d.marker_patterns), re.IGNORECASE) for c, d in self.langs.items() if d.marker_patterns}
        self._alpha = {c: {s: frozenset(a) for s, a in d.alphabet.items()} for c, d in self.langs.items()}
        self._ft_cache: dict[str, str] = {}

    def ft_code(self, label: str) -> str:
        c = self._ft_cache.get(label)
        if c is None:
            bare = label.removeprefix("__label__")
            c = self.ft_labels.get(bare) or bare
            self._ft_cache[label] = c
        return c

    def so_codes(self, label: str) -> tuple[str, ...]:
        hit = self.so_labels.get(label)
        if hit:
            return hit
        return (self.so_other.get(label, "x-" + label),)


# ------------------------------------------------------------------------------ evidence
def script_counts_sampled(texts: Sequence[str], chars: int = 150) -> np.ndarray:
    """Script counts over `chars` characters per text: the first ones of a short text, a
    stride-4 sample of the first 4*chars of a long one. (The stage samples every text with
    stride 4, which on a sentence of 8 characters keeps 2, and so can miss the one kana
    that tells Japanese from Chinese.)"""
    return script_counts([t[:chars] if len(t) <= 2 * chars else t[: chars * 4 : 4] for t in texts], chars)


def fits_script(data: LidData, code: str, dom: str, counts_row: np.ndarray) -> bool:
    lang = data.langs.get(code)
    if lang is None:
        return True
    if dom != "Zyyy" and dom not in lang.scripts:
        return False
    if lang.requires_script:
        need = sum(int(counts_row[SCRIPT_ID[s]]) for s in lang.requires_script)
        return need / (int(counts_row[1:].sum()) or 1) >= 0.02
    return True


def letters_of(text: str, dom: str) -> frozenset[str]:
    t = text.lower()
    if dom == "Cyrl":
        t = t.translate(_CYRL_LOOKALIKE)
    return frozenset(ch for ch in t if ch.isalpha())


def letter_evidence(data: LidData, code: str, text: str, letters: frozenset[str], dom: str) -> float:
    lang = data.langs.get(code)
    if lang is None:
        return 0.0
    p = data.params
    ev = 0.0
    if (lang.markers and not letters.isdisjoint(lang.markers)) or ((pat := data._pat.get(code)) and pat.search(text)):
        ev += p.marker_bonus
    alpha = data._alpha[code].get(dom)
    if alpha:
        # letters of the document's own script that the orthography does not have
        from babelmill.unicode_scripts import TABLE

        sid = SCRIPT_ID.get(dom)
        alien = sum(1 for ch in letters if ch not in alpha and TABLE[ord(ch)] == sid)
        ev -= p.alien_penalty * min(alien, 3)
    return ev


@lru_cache(maxsize=64)
def _log_freq(lang: str) -> dict[str, float]:
    import wordfreq

    return {w: math.log10(f) for w, f in wordfreq.get_frequency_dict(lang).items() if f > 0}


def wordfreq_evidence(data: LidData, pool: Sequence[str], text: str) -> dict[str, float]:
    p = data.params
    wf = {}
    words = _WORD.findall(text[: p.wf_words * 10].lower())[: p.wf_words]
    if not words:
        return {}
    for c in pool:
        lang = data.langs.get(c)
        wl = lang.wordfreq if lang else None
        if wl:
            get = _log_freq(wl).get
            wf[c] = sum(get(w, p.wf_floor) for w in words) / len(words)
    if len(wf) < 2:
        return {}
    top = max(wf.values())
    return {c: p.wf_weight * (v - top) for c, v in wf.items()}


# ------------------------------------------------------------------------------ the rule
def resolve(
    texts: Sequence[str],
    ft_labels: Sequence[Sequence[str]],
    ft_probs: Sequence[Sequence[float]],
    data: LidData,
    second_opinion: Callable[[list[str]], list[list[tuple[str, float]]]] | None = None,
    counts: np.ndarray | None = None,
    doms: list[str] | None = None,
) -> tuple[list[str], np.ndarray, list[str | None], int]:
    p = data.params
    n = len(texts)
    if counts is None:
        counts = script_counts_sampled(texts)
    if doms is None:
        doms = dominant_from_counts(counts)
    codes: list[str] = [""] * n
    conf = np.zeros(n, dtype=np.float32)
    reasons: list[str | None] = [None] * n
    langs, groups = data.langs, data.groups
    pending: list[tuple[int, dict[str, float], bool]] = []
    for i in range(n):
        t = texts[i]
        short = len(t) < p.short_chars
        dom = doms[i]
        labs, ps = ft_labels[i], ft_probs[i]
        cands: dict[str, float] = {}
        for lab, v in zip(labs, ps, strict=False):
            c = data.ft_code(lab)
            cands[c] = cands.get(c, 0.0) + float(v)
        fitting = {c: v for c, v in cands.items() if fits_script(data, c, dom, counts[i])}
        if fitting:
            best = max(fitting, key=fitting.get)
            pb = fitting[best]
            lang = langs.get(best)
            if lang is not None:
                g = groups.get(lang.group) if lang.group else None
                # skip_above only for long documents: a short one in a resolvable group is always resolved
                needs_group = g is not None and set(g.evidence) - {"script"} and (short or pb < g.skip_above)
                if not needs_group and pb >= lang.accept[0 if short else 1]:
                    codes[i], conf[i] = best, min(pb, 1.0)
                    continue
            elif pb >= p.other_accept:
                codes[i], conf[i], reasons[i] = best, pb, "lang_other"
                continue
        pending.append((i, fitting, short))
    n_so = len(pending)
    so_out: list[list[tuple[str, float]]] = [[] for _ in pending]
    if second_opinion is not None and pending:
        so_out = second_opinion([texts[i][: p.so_chars] for i, _, _ in pending])
    for (i, fitting, short), so in zip(pending, so_out, strict=True):
        t = texts[i][: p.so_chars * 2]
        dom = doms[i]
        so_sc: dict[str, float] = {}
        for lab, s in so:
            for c in data.so_codes(lab):
                if c not in so_sc:
                    so_sc[c] = s
        pool = dict.fromkeys(fitting)
        for rank, (lab, _) in enumerate(so):
            for c in data.so_codes(lab):
                if (c in langs or (rank < p.so_other_k and c in data.so_other.values())) and fits_script(data, c, dom, counts[i]):
                    pool[c] = None
        for c in list(pool):
            lang = langs.get(c)
            if lang is not None and lang.group:
                g = groups[lang.group]
                for m in (*g.members, *g.others):
                    if fits_script(data, m, dom, counts[i]):
                        pool[m] = None
        if not pool:
            best = max(fitting or {"und": 0.0}, key=(fitting or {"und": 0.0}).get)
            codes[i], conf[i], reasons[i] = best, 0.0, "lang_script_mismatch"
            continue
        w_ft = p.w_ft[0 if short else 1]
        score = {c: w_ft * math.log(fitting.get(c, 0.0) + (langs[c].ft_floor if c in langs else EPS)) for c in pool}
        if so_sc:
            top = min(so_sc.values())
            w_so = p.w_so * min(1.0, max(0.0, (p.so_bad - top) / (p.so_bad - p.so_good)))
            for c in pool:
                s = so_sc.get(c)
                score[c] += w_so * (-p.so_cap if s is None else max(-p.so_cap, top - s))
        letters = letters_of(t, dom)
        for c in pool:
            score[c] += letter_evidence(data, c, t, letters, dom)
        if any((lg := langs.get(c)) and lg.group and "wordfreq" in groups[lg.group].evidence for c in pool):
            for c, v in wordfreq_evidence(data, list(pool), t).items():
                score[c] += v
        best = max(score, key=score.get)
        m = score[best]
        z = sum(math.exp(v - m) for v in score.values())
        cf = 1.0 / z
        codes[i], conf[i] = best, cf
        lang = langs.get(best)
        if lang is None:
            reasons[i] = "lang_other"
        elif cf < lang.reject[0 if short else 1]:
            reasons[i] = "lang_low_confidence"
    return codes, conf, reasons, n_so


# ------------------------------------------------------------------------------ building LidData
def lid_data_from_dicts(registry_langs: dict[str, dict], registry_groups: dict[str, dict], proposal: dict,
                        params: Params | None = None) -> LidData:
    """LidData from plain dicts: `registry_langs` code -> the registry's fields (scripts,
    requires_script, lid_labels, confusable_group, markers, wordfreq, lid_threshold),
    `registry_groups` name -> (members, others, resolve, skip_above), and `proposal` the parsed
    configs/lid_proposal.yaml (per-language additions, group evidence, second-opinion labels)."""
    add = proposal.get("languages", {})
    defaults = proposal.get("defaults", {})
    langs: dict[str, LangData] = {}
    ft: dict[str, str] = {}
    so: dict[str, list[str]] = {}
    for code, r in registry_langs.items():
        a = add.get(code, {})
        for lab in r.get("lid_labels", []):
            ft[lab] = code
        for lab in a.get("second_opinion_labels", []):
            so.setdefault(lab, []).append(code)
        acc = a.get("accept", defaults.get("accept", {}))
        rej = a.get("reject", defaults.get("reject", {}))
        langs[code] = LangData(
            scripts=tuple(r["scripts"]),
            requires_script=tuple(r.get("requires_script", ())),
            group=r.get("confusable_group"),
            markers=a.get("markers", r.get("markers", "")),
            marker_patterns=tuple(a.get("marker_patterns", ())),
            alphabet=dict(a.get("alphabet", {})),
            wordfreq=r.get("wordfreq"),
            accept=(float(acc.get("short", 0.5)), float(acc.get("long", 0.5))),
            reject=(float(rej.get("short", 0.3)), float(rej.get("long", 0.3))),
            ft_floor=float(a.get("ft_floor", EPS)),
        )
    gadd = proposal.get("confusable_groups", {})
    groups = {}
    for name, g in registry_groups.items():
        ga = gadd.get(name, {})
        groups[name] = GroupData(
            members=tuple(g["members"]), others=tuple(g.get("others", ())),
            evidence=tuple(ga.get("evidence", g.get("resolve", ()))),
            skip_above=float(ga.get("skip_above", g.get("skip_above", 1.01))))
    so_other = dict(proposal.get("second_opinion", {}).get("other_labels", {}))
    return LidData(langs=langs, groups=groups, ft_labels=ft, so_labels={k: tuple(v) for k, v in so.items()},
                   so_other=so_other, params=params or Params(**proposal.get("params", {})))


def lid_data_from_registry(reg, proposal: dict, params: Params | None = None) -> LidData:
    """Same, reading the registry object (babelmill.languages.LanguageRegistry)."""
    langs = {c: reg.get(c).model_dump() for c in reg.codes}
    groups = {n: g.model_dump() for n, g in reg.groups.items()}
    return lid_data_from_dicts(langs, groups, proposal, params)


# ------------------------------------------------------------------------------ heliport adapter
def heliport_second_opinion(k: int = 8) -> Callable[[list[str]], list[list[tuple[str, float]]]]:
    """A second-opinion callable over HeLI-OTS (`heliport`, optional). Load once per worker."""
    import heliport

    ident = heliport.Identifier()

    def call(texts: list[str]) -> list[list[tuple[str, float]]]:
        f = ident.identify_topk_with_score
        return [f(t, k) for t in texts]

    return call
