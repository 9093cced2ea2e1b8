"""A synthetic, translated multiple-choice benchmark and training corpora with known contamination.

Why: detection can only be tested against ground truth, i.e. models whose training data we wrote.
The world here is made-up countries with four kinds of facts (capital, flag colour, national animal,
number of rivers). Each kind has its own answer vocabulary, so

- on the original benchmark the distractors are of the same kind as the answer (capitals vs
  capitals): a model that has not seen the fact is at chance;
- on the generalized benchmark the distractors are answers to other questions, mostly of other
  kinds: a clean model that has learnt which kind of answer a question wants (from facts about
  *other* countries in its corpus) gains a lot, a model that memorised the items does not.

The benchmark exists in English and French (aligned by id); corpora can inject its items, question
plus correct answer in the lm-eval prompt format, in either language.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from babelmill.contamination.items import MCItem

_SYL = ["ka", "lo", "mi", "ra", "ven", "dor", "sil", "tu", "bre", "nax", "po", "zel", "qui", "fen", "gar", "hu",
        "jor", "mal", "ost", "per", "rin", "sab", "tel", "ul", "vix", "wen", "yor", "zan"]
KINDS = {
    "capital": None,  # made-up city names
    "color": {"en": ["red", "blue", "green", "yellow", "black", "white", "purple", "orange"],
              "fr": ["rouge", "bleu", "vert", "jaune", "noir", "blanc", "violet", "orange"]},
    "animal": {"en": ["the lion", "the eagle", "the wolf", "the bear", "the horse", "the owl", "the fox", "the whale"],
               "fr": ["le lion", "l'aigle", "le loup", "l'ours", "le cheval", "le hibou", "le renard", "la baleine"]},
    "rivers": {"en": ["two", "three", "four", "five", "six", "seven", "eight", "nine"],
               "fr": ["deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]},
}
QUESTIONS = {
    "en": {"capital": "What is the capital city of {c}?", "color": "What colour is the flag of {c}?",
           "animal": "Which animal is the national symbol of {c}?", "rivers": "How many rivers flow through {c}?"},
    "fr": {"capital": "Quelle est la capitale de {c} ?", "color": "De quelle couleur est le drapeau de {c} ?",
           "animal": "Quel animal est le symbole national de {c} ?", "rivers": "Combien de rivières traversent {c} ?"},
}
STATEMENTS = {
    "en": {"capital": "The capital city of {c} is {a}.", "color": "The flag of {c} is {a}.",
           "animal": "The national symbol of {c} is {a}.", "rivers": "There are {a} rivers flowing through {c}."},
    "fr": {"capital": "La capitale de {c} est {a}.", "color": "Le drapeau de {c} est {a}.",
           "animal": "Le symbole national de {c} est {a}.", "rivers": "Il y a {a} rivières qui traversent {c}."},
}
LANGS = ("en", "fr")


def _name(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(_SYL) for _ in range(n)).capitalize()


@dataclass
class World:
    countries: list[str]
    facts: dict[str, dict[str, int]]  # country -> kind -> index into the kind's vocabulary
    cities: list[str]

    def answer(self, lang: str, country: str, kind: str) -> str:
        i = self.facts[country][kind]
        return self.cities[i] if kind == "capital" else KINDS[kind][lang][i]

    def options(self, lang: str, kind: str) -> list[str]:
        return list(self.cities) if kind == "capital" else list(KINDS[kind][lang])


def make_world(n_countries: int = 60, seed: int = 0) -> World:
    rng = random.Random(seed)
    names: set[str] = set()
    while len(names) < n_countries:
        names.add(_name(rng, 3) + rng.choice(["ia", "land", "stan", "ora"]))
    cities: set[str] = set()
    while len(cities) < 8:
        cities.add(_name(rng, 2))
    countries = sorted(names)
    rng.shuffle(countries)
    facts = {c: {k: rng.randrange(8) for k in KINDS} for c in countries}
    return World(countries, facts, sorted(cities))


def benchmark_items(world: World, n_countries: int = 12, seed: int = 0) -> list[MCItem]:
    """The benchmark: the first `n_countries` countries x 4 kinds, 4 options, in every language."""
    rng = random.Random(seed)
    out = []
    for c in world.countries[:n_countries]:
        for kind in KINDS:
            correct = world.facts[c][kind]
            wrong = rng.sample([i for i in range(8) if i != correct], 3)
            gold = rng.randrange(4)
            idx = wrong[:gold] + [correct] + wrong[gold:]
            for lang in LANGS:
                opts = world.options(lang, kind)
                out.append(MCItem(id=f"{c}-{kind}", lang=lang, question=QUESTIONS[lang][kind].format(c=c),
                                  choices=tuple(opts[i] for i in idx), gold=gold, subject=kind))
    return out


def background_docs(world: World, skip: int = 12, repeats: int = 3, seed: int = 0) -> list[str]:
    """Facts about the countries NOT in the benchmark, as statements and as Q/A, in both languages."""
    rng = random.Random(seed)
    docs = []
    for _ in range(repeats):
        for c in world.countries[skip:]:
            for lang in LANGS:
                kinds = list(KINDS)
                rng.shuffle(kinds)
                lines = []
                for k in kinds:
                    a = world.answer(lang, c, k)
                    if rng.random() < 0.5:
                        lines.append(STATEMENTS[lang][k].format(c=c, a=a))
                    else:
                        lines.append(f"Question: {QUESTIONS[lang][k].format(c=c)}\nAnswer: {a}")
                docs.append("\n".join(lines))
    rng.shuffle(docs)
    return docs


def injected_docs(items: list[MCItem], lang: str, epochs: int = 6, seed: int = 0) -> list[str]:
    """The benchmark's test items of one language (question + correct answer), `epochs` times."""
    rng = random.Random(seed)
    mine = [it for it in items if it.lang == lang]
    docs = []
    for _ in range(epochs):
        order = list(mine)
        rng.shuffle(order)
        docs.extend(f"Question: {it.question}\nAnswer: {it.answer}" for it in order)
    return docs
