"""Render the data card as one self-contained HTML page (jinja2, autoescaped; charts inline).

Numbers in the tables are formatted by the filters below and nothing else, so a reader (or the
test) can map every cell back to datacard.json / balance.json.
"""

from __future__ import annotations

import jinja2

TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>babelmill data card — {{ card.run.name }}</title>
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
.kpis{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.kpi{border:1px solid #ddd;border-radius:8px;padding:.6rem 1rem;min-width:10rem}
.kpi b{display:block;font-size:1.4rem}
table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border-bottom:1px solid #e4e4e4;padding:.25rem .6rem;text-align:right}
th{background:#f5f5f5;position:sticky;top:0}
td.l,th.l{text-align:left}
tr.other td{color:#888}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0}
details{margin:.3rem 0} summary{cursor:pointer}
.ex{font-size:.8rem;background:#fafafa;border-left:3px solid #ccc;padding:.3rem .6rem;margin:.3rem 0;white-space:pre-wrap}
.note{color:#555;font-size:.85rem}
</style></head><body>
<h1>Data card: {{ card.run.name }}</h1>
<p class="sub">run <code>{{ card.run.dir }}</code> · {{ card.run.created }} · engine {{ card.run.engine }} ·
stages {{ card.run.stages | join(" → ") }} · tokens counted by {{ counter }}</p>

<p id="summary">{{ summary }}</p>
<div class="kpis">
 <div class="kpi">documents in<b>{{ card.totals.docs_in | num }}</b></div>
 <div class="kpi">kept<b>{{ card.totals.docs_kept | num }}</b>{{ pct(card.totals.docs_kept, card.totals.docs_in) }} of documents</div>
 <div class="kpi">tokens kept<b>{{ card.totals.tokens_kept | num }}</b>of {{ card.totals.tokens_in | num }} read</div>
 {% if card.balance %}<div class="kpi">balanced corpus<b>{{ card.totals.tokens_sampled | num }}</b>tokens in {{ card.totals.docs_sampled | num }} documents</div>{% endif %}
</div>

<h2>Distribution before and after balancing</h2>
<img id="fig-distribution" alt="tokens per language before and after balancing (log scale)" src="{{ figures['distribution.png'] }}">
{% if card.balance %}<p class="note">Balance: policy <b>{{ card.balance.config.policy }}</b>
{% if card.balance.config.policy == "temperature" %}(share ∝ tokens<sup>{{ card.balance.config.alpha }}</sup>){% endif %},
at most {{ card.balance.config.max_epochs }} epochs per language, budget {{ card.balance.budget_tokens | num }} tokens,
seed {{ card.balance.config.seed }}{% if card.balance.config.rehydrate.enabled %}, rehydration up to ×{{ card.balance.config.rehydrate.max_weight }}{% endif %}.
{% if card.balance.shortfall_tokens %}<b>Short of the budget by {{ card.balance.shortfall_tokens | num }} tokens</b> (every language at its epoch cap).{% endif %}
Source: <code>{{ card.balance.file }}</code>.</p>{% else %}<p class="note">This run has no balance (add a <code>balance:</code> section or run <code>babelmill balance</code>).</p>{% endif %}

<h2>Per language</h2>
<table id="languages">
<thead><tr><th class="l">lang</th><th class="l">name</th><th>docs in</th><th>tokens in</th><th>dropped</th><th>docs kept</th><th>tokens kept</th>
<th>docs sampled</th><th>tokens sampled</th><th>weight</th><th>epochs</th><th class="l">dropped because</th></tr></thead>
<tbody>
{% for lang in card.language_order %}{% set v = card.languages[lang] %}
<tr data-lang="{{ lang }}"{% if not v.target %} class="other"{% endif %}><td class="l">{{ lang }}</td><td class="l">{{ v.name or "(not a target)" }}</td>
<td>{{ v.docs_in | num }}</td><td>{{ v.tokens_in | num }}</td><td>{{ v.docs_dropped | num }}</td><td>{{ v.docs_kept | num }}</td><td>{{ v.tokens_kept | num }}</td>
<td>{{ v.docs_sampled | num }}</td><td>{{ v.tokens_sampled | num }}</td><td>{{ v.weight | share }}</td><td>{{ v.epochs | epochs }}{% if v.capped %} (cap){% endif %}</td>
<td class="l">{% for r, n in v.dropped.items() %}{{ r }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% endfor %}
</tbody></table>

<h2>Why documents were dropped</h2>
<img id="fig-drops" alt="dropped documents per language by reason" src="{{ figures['drops.png'] }}">
<table id="reasons"><thead><tr><th class="l">stage:reason</th><th>documents</th><th>share of input</th></tr></thead><tbody>
{% for r, n in card.reasons.items() %}<tr><td class="l">{{ r }}</td><td>{{ n | num }}</td><td>{{ pct(n, card.totals.docs_in) }}</td></tr>{% endfor %}
</tbody></table>

<h2>Examples of rejected documents</h2>
<p class="note">Up to {{ per_reason }} per language and reason (first by id), text truncated.</p>
{% for lang in card.language_order %}{% set v = card.languages[lang] %}{% if v.examples %}
<details><summary><b>{{ lang }}</b> {{ v.name or "" }} — {{ v.docs_dropped }} dropped</summary>
{% for r, exs in v.examples.items() %}<p><b>{{ r }}</b></p>{% for e in exs %}
<div class="ex"><b>{{ e.id }}</b>{% if e.detail %} — {{ e.detail }}{% endif %}{% if e.kept_id %} (kept copy: {{ e.kept_id }}){% endif %}
{{ e.text }}</div>{% endfor %}{% endfor %}
</details>{% endif %}{% endfor %}

{% if card.model_scores %}<h2 id="model-scores">Model-based quality scores</h2>
{% for col, sc in card.model_scores.items() %}<h3>{{ sc.label }}</h3>
<p class="note">Column <code>{{ col }}</code> from stage <code>{{ sc.stage }}</code> (models <code>{{ sc.models }}</code>){% if sc.score_only %}, score-only: nothing was dropped for it{% else %}; documents it dropped are not in the histograms (see the drop table){% endif %}. Kept documents only; a null score means the language had no model.</p>
{% if sc.figure %}<img id="fig-scores-{{ col }}" alt="{{ col }} histograms per language" src="{{ figures[sc.figure] }}">{% endif %}
<table id="scores-{{ col }}"><thead><tr><th class="l">lang</th><th>scored</th><th>null</th><th>mean</th><th>p10</th><th>median</th><th>p90</th>{% if col == "perplexity" %}<th class="l">buckets</th>{% endif %}<th class="l">dropped</th></tr></thead><tbody>
{% for lang, e in sc.languages.items() %}<tr><td class="l">{{ lang }}</td><td>{{ e.scored | num }}</td><td>{{ e.null | num }}</td>
{% if e.scored %}<td>{{ e.mean | score }}</td><td>{{ e.p10 | score }}</td><td>{{ e.p50 | score }}</td><td>{{ e.p90 | score }}</td>{% else %}<td>–</td><td>–</td><td>–</td><td>–</td>{% endif %}
{% if col == "perplexity" %}<td class="l">{% for b, n in (e.get('buckets') or {}).items() %}{{ b }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</td>{% endif %}
<td class="l">{% for r, n in e.dropped.items() %}{{ r }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
{% endfor %}</tbody></table>
{% for lang, e in sc.languages.items() %}{% if e.get('examples') %}<details><summary><b>{{ lang }}</b> — {{ col }} examples: bottom, middle, top</summary>
{% for ex in e.examples %}<div class="ex"><b>{{ ex.position }}</b> {{ ex.id }} — {{ col }} {{ ex.score | score }}
{{ ex.text }}</div>{% endfor %}</details>{% endif %}{% endfor %}
{% endfor %}{% endif %}

<p class="note">Accounting: in = kept + dropped is {{ "balanced" if card.totals.accounting_balanced else "NOT balanced" }}.
{% if card.totals.records_lost %}<span id="records-lost">At least {{ card.totals.records_lost | num }} more records were in unreadable parts of the input (not counted in documents in).</span>
{% endif %}{% if card.totals.inputs_skipped %}<span id="inputs-skipped">{{ card.totals.inputs_skipped | num }} input(s) were skipped (listed in manifest.json).</span>
{% endif %}Generated by <code>babelmill report</code> from manifest.json, rejects/ and balance.json.</p>
</body></html>
"""


def _num(v) -> str:
    return "–" if v is None else f"{v:,}"


def _share(v) -> str:
    return "–" if v is None else f"{v * 100:.2f}%"


def _epochs(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def _score(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}")


def _pct(a, b) -> str:
    return f"{a / b:.1%}" if b else "–"


def _summary(card: dict) -> str:
    t = card["totals"]
    targets = [k for k in card["language_order"] if card["languages"][k]["target"] and card["languages"][k]["docs_kept"]]
    s = (f"{t['docs_kept']:,} of {t['docs_in']:,} documents were kept ({_pct(t['docs_kept'], t['docs_in'])}) "
         f"in {len(targets)} target languages")
    if card["reasons"]:
        top = next(iter(card["reasons"].items()))
        s += f"; the most common reason to drop a document was {top[0]} ({top[1]:,})"
    if card["balance"]:
        langs = [(k, card["languages"][k]) for k in targets if card["languages"][k]["epochs"] is not None]
        if langs:
            up = max(langs, key=lambda kv: kv[1]["epochs"])
            down = min(langs, key=lambda kv: kv[1]["epochs"])
            weights = [v["weight"] for _, v in langs]
            s += (f". The balanced corpus has {t['tokens_sampled']:,} tokens; language weights range from "
                  f"{min(weights):.2%} to {max(weights):.2%}; {up[0]} is repeated most ({up[1]['epochs']:.2f} epochs) "
                  f"and {down[0]} is sampled least ({down[1]['epochs']:.2f} of its tokens)")
    return s + "."


def render_datacard(card: dict, figures: dict[str, str]) -> str:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(num=_num, share=_share, epochs=_epochs, score=_score)
    counter = card["token_counter"] if isinstance(card["token_counter"], str) else f"tokenizer {card['token_counter']['tokenizer']}"
    return env.from_string(TEMPLATE).render(card=card, figures=figures, pct=_pct, summary=_summary(card),
                                            counter=counter, per_reason=3)
