"""HTML report of an audit: tables, accuracy bar charts with CI error bars, overlap counts.

Self-contained on purpose (PNG charts base64-embedded, inline CSS): the file can be mailed,
attached to a CI run or opened from a model registry without the files next to it.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import jinja2

VERDICT_COLOURS = {"contaminated": "#c0392b", "clean": "#27ae60", "inconclusive": "#7f8c8d"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def accuracy_chart(bench_name: str, rows: dict[str, dict]) -> str:
    """Grouped bars: original vs generalized accuracy per language, 95% bootstrap CI error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = sorted(rows)
    x = np.arange(len(langs))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(langs) + 2), 3.2))
    for off, key, label, colour in ((-0.2, "acc_original", "original", "#34495e"),
                                    (0.2, "acc_generalized", "generalized", "#e67e22")):
        vals = [rows[lang][key] or 0.0 for lang in langs]
        ci = [rows[lang].get(key + "_ci") or [v, v] for lang, v in zip(langs, vals, strict=True)]
        err = np.array([[max(0.0, v - (c[0] if c[0] is not None else v)) for v, c in zip(vals, ci, strict=True)],
                        [max(0.0, (c[1] if c[1] is not None else v) - v) for v, c in zip(vals, ci, strict=True)]])
        ax.bar(x + off, vals, width=0.4, label=label, color=colour, yerr=err, capsize=3)
    for i, lang in enumerate(langs):
        v = rows[lang]["verdict"]
        ax.text(i, 1.03, v, ha="center", fontsize=7, color=VERDICT_COLOURS.get(v, "black"))
    ax.set_xticks(x, langs)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("accuracy")
    ax.set_title(f"{bench_name}: original vs generalized")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    return _png(fig)


def overlap_chart(overlap: dict) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, items, docs = [], [], []
    for bench, langs in (overlap.get("benchmarks") or {}).items():
        for lang, r in sorted(langs.items()):
            labels.append(f"{bench}\n{lang}")
            items.append(r["items_overlapping"])
            docs.append(r["docs_overlapping"])
    if not labels:
        return None
    import numpy as np

    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(labels) + 2), 3.0))
    ax.bar(x - 0.2, items, width=0.4, label="items found", color="#8e44ad")
    ax.bar(x + 0.2, docs, width=0.4, label="documents containing them", color="#16a085")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_title("n-gram overlap with the corpus")
    ax.set_ylim(0, max(items + docs + [1]) * 1.15)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    return _png(fig)


_TEMPLATE = jinja2.Template("""<!doctype html>
<html><head><meta charset="utf-8"><title>Contamination audit: {{ r.model|e }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f4f4f4}td.l{text-align:left}.v{font-weight:bold}
.contaminated{color:#c0392b}.clean{color:#27ae60}.inconclusive{color:#7f8c8d}
code{background:#f4f4f4;padding:0 3px}
</style></head><body>
<h1>Contamination audit</h1>
<p>Model: <code>{{ r.model|e }}</code> ({{ r.backend }}) &middot; seed {{ r.seed }} &middot; metric {{ r.metric }}
&middot; overall verdict: <span class="v {{ r.verdict }}">{{ r.verdict }}</span></p>
<p>Method: choice-swap generalization test (Yao et al., 2024). Each wrong option is replaced by the correct answer of
another question; a model that understands the questions gains accuracy (delta &gt; 0), one that memorised the benchmark
(in any language) does not. Rule: <i>contaminated</i> if the {{ (r.verdict_rule.confidence*100)|round|int }}% CI of delta
lies below {{ r.verdict_rule.contaminated_below }}; <i>clean</i> if it lies above {{ r.verdict_rule.clean_above }};
otherwise (or with fewer than {{ r.verdict_rule.min_items }} items{% if r.verdict_rule.require_above_chance %},
or when the original accuracy is not above chance{% endif %}) <i>inconclusive</i>.
Prompt: <code>{{ prompt_shown|e }}</code> + <code>" {choice}"</code>.</p>
{% for name, b in r.benchmarks.items() %}
<h2>{{ name|e }} <span class="v {{ b.verdict }}">({{ b.verdict }})</span></h2>
<table><tr><th>language</th><th>n</th><th>acc original</th><th>acc generalized</th><th>delta</th><th>CI</th>
<th>acc_norm orig</th><th>acc_norm gen</th><th>verdict</th></tr>
{% for lang, x in b.languages|dictsort %}
<tr><td class="l">{{ lang }}</td><td>{{ x.n }}</td><td>{{ fmt(x.acc_original) }}</td><td>{{ fmt(x.acc_generalized) }}</td>
<td>{{ fmt(x.delta, True) }}</td><td>[{{ fmt(x.ci_low, True) }}, {{ fmt(x.ci_high, True) }}]</td>
<td>{{ fmt(x.acc_norm_original) }}</td><td>{{ fmt(x.acc_norm_generalized) }}</td>
<td class="v {{ x.verdict }}">{{ x.verdict }}</td></tr>
{% endfor %}</table>
<img alt="accuracy chart" src="data:image/png;base64,{{ charts[name] }}">
{% if b.cross_lingual %}
<h3>Cross-lingual</h3>
<p>Behaves as if it memorised: <b>{{ b.cross_lingual.memorised_language or "no language" }}</b>
{% if b.cross_lingual.contaminated_languages %}(contaminated versions: {{ b.cross_lingual.contaminated_languages|join(", ") }}){% endif %}.
Per-item agreement of correctness on the original, for each language pair:</p>
<table><tr><th>pair</th><th>shared items</th><th>agreement</th><th>both correct</th></tr>
{% for pair, a in b.cross_lingual.agreement|dictsort %}
<tr><td class="l">{{ pair }}</td><td>{{ a.shared_items }}</td><td>{{ fmt(a.agreement) }}</td><td>{{ fmt(a.both_correct) }}</td></tr>
{% endfor %}</table>
{% endif %}
{% if b.language_identification %}<p>Language: <b>{{ b.language_identification.lang }}</b> ({% if b.language_identification.share is not none %}identified by the LID stage from {{ b.language_identification.n }} items, {{ (b.language_identification.share*100)|round|int }}% of them{% else %}{{ b.language_identification.method|e }}{% endif %}); the file names none.</p>{% endif %}
{% if b.generalized_files %}<p>Generalized benchmark saved as: {% for f in b.generalized_files %}<code>{{ f|e }}</code> {% endfor %}</p>{% endif %}
{% endfor %}
{% if r.overlap %}
<h2>n-gram overlap</h2>
<p>{{ r.overlap.docs_scanned }} documents scanned in {{ r.overlap.files|length }} file(s);
{{ r.overlap.docs_overlapping }} contain benchmark n-grams (word {{ r.overlap.config.word_n }}-grams /
character {{ r.overlap.config.char_n }}-grams).</p>
{% if r.overlap.quarantined and r.overlap.quarantined.records %}<p>{{ r.overlap.quarantined.records }} record(s) not scanned
(quarantined: {% for k, n in r.overlap.quarantined.by_reason|dictsort %}{{ k }} {{ n }}{% if not loop.last %}, {% endif %}{% endfor %}).</p>{% endif %}
<table><tr><th>benchmark</th><th>language</th><th>items</th><th>items found</th><th>fraction</th><th>documents</th></tr>
{% for bench, langs in r.overlap.benchmarks.items() %}{% for lang, o in langs|dictsort %}
<tr><td class="l">{{ bench|e }}</td><td class="l">{{ lang }}</td><td>{{ o["items"] }}</td><td>{{ o.items_overlapping }}</td>
<td>{{ fmt(o.fraction) }}</td><td>{{ o.docs_overlapping }}</td></tr>
{% endfor %}{% endfor %}</table>
{% if overlap_png %}<img alt="overlap chart" src="data:image/png;base64,{{ overlap_png }}">{% endif %}
{% endif %}
<p style="color:#888;font-size:small">scored {{ r.timing.items_scored }} items in {{ r.timing.score_s }} s
({{ r.timing.items_per_s }} items/s)</p>
</body></html>
""")


def fmt(v, signed: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.3f}" if signed else f"{v:.3f}"


def render_html(result: dict) -> str:
    charts = {name: accuracy_chart(name, b["languages"]) for name, b in result["benchmarks"].items()}
    overlap_png = overlap_chart(result["overlap"]) if result.get("overlap") else None
    prompt_shown = result.get("prompt", "").replace("\n", "\\n")
    return _TEMPLATE.render(r=result, charts=charts, overlap_png=overlap_png, fmt=fmt, prompt_shown=prompt_shown)


def write_html(result: dict, path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(render_html(result), encoding="utf-8")
    return p


def write_summary_html(summary: dict[str, dict], path: str | Path) -> Path:
    """One table over several audited models (the demo's clean vs contaminated comparison)."""
    rows = []
    for model, r in summary.items():
        for bench, b in r["benchmarks"].items():
            for lang, x in sorted(b["languages"].items()):
                ov = ((r.get("overlap") or {}).get("benchmarks") or {}).get(bench, {}).get(lang)
                rows.append(f"<tr><td>{html.escape(model)}</td><td>{html.escape(bench)}</td><td>{lang}</td>"
                            f"<td>{fmt(x['acc_original'])}</td><td>{fmt(x['acc_generalized'])}</td>"
                            f"<td>{fmt(x['delta'], True)}</td><td>[{fmt(x['ci_low'], True)}, {fmt(x['ci_high'], True)}]</td>"
                            f"<td class='{x['verdict']}'>{x['verdict']}</td>"
                            f"<td>{'' if ov is None else ov['items_overlapping']}</td>"
                            f"<td><a href='{html.escape(model)}.html'>report</a></td></tr>")
    doc = ("<!doctype html><html><head><meta charset='utf-8'><title>Contamination audit summary</title><style>"
           "body{font-family:system-ui,sans-serif;margin:2em}td,th{border:1px solid #ccc;padding:3px 8px;white-space:nowrap}"
           "table{border-collapse:collapse}.contaminated{color:#c0392b}.clean{color:#27ae60}.inconclusive{color:#7f8c8d}"
           "</style></head><body><h1>Contamination audit summary</h1><table><tr><th>model</th><th>benchmark</th>"
           "<th>language</th><th>acc original</th><th>acc generalized</th><th>delta</th><th>CI</th><th>verdict</th>"
           "<th>items in corpus (n-gram)</th><th></th></tr>" + "".join(rows) + "</table></body></html>")
    p = Path(path)
    p.write_text(doc, encoding="utf-8")
    return p
