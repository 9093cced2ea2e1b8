"""Human-readable outputs of evaluation/comparison: a rich table on the terminal and a
self-contained HTML page (PNG charts base64-embedded, so the file can be mailed or attached
to a run without its directory)."""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

_METRICS = [("parity", "parity"), ("tokens_per_char", "tok/char"), ("tokens_per_word", "tok/word"),
            ("bytes_fallback_rate", "fallback")]


def _fmt(v, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _order(results: list[dict]) -> list[str]:
    """Languages by parity of the first tokenizer, worst first (reference last)."""
    first = results[0]
    ref = first["reference"]
    langs = sorted((lang for lang in first["languages"] if lang != ref),
                   key=lambda lang: -first["languages"][lang]["parity"])
    return [*langs, ref]


def table(results: list[dict], metrics=("parity", "bytes_fallback_rate")) -> Table:
    """One row per language; per tokenizer the chosen metrics."""
    t = Table(title="Tokenizer parity (tokens relative to English on the same parallel lines)")
    t.add_column("lang")
    for r in results:
        for m in metrics:
            t.add_column(f"{r['name']}\n{dict(_METRICS).get(m, m)}", justify="right")
    for lang in _order(results):
        row = [lang]
        for r in results:
            row.extend(_fmt(r["languages"].get(lang, {}).get(m)) for m in metrics)
        t.add_row(*row)
    t.add_section()
    for label, key in [("worst", "worst_parity"), ("std", "std_parity"), ("mean", "mean_parity")]:
        row = [label]
        for r in results:
            s = r["summary"]
            row.append(_fmt(s.get(key), 3) + (f" ({s['worst_language']})" if key == "worst_parity" else ""))
            row.extend("" for _ in metrics[1:])
        t.add_row(*row)
    return t


def print_table(results: list[dict], console: Console | None = None, **kw) -> None:
    """Print the table; off a terminal (logs, CI, pipes) rich would squeeze it to 80 columns."""
    console = console or Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table(results, **kw))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def charts(results: list[dict]) -> list[tuple[str, str]]:
    """(title, base64 PNG) for: parity per language; vocabulary share per script."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    langs = _order(results)
    x = np.arange(len(langs))
    w = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(max(8, len(langs) * 0.32), 4))
    for k, r in enumerate(results):
        ax.bar(x + k * w, [r["languages"][lang]["parity"] for lang in langs], w, label=r["name"])
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(x + w * (len(results) - 1) / 2, langs, rotation=90, fontsize=8)
    ax.set_ylabel("tokens / tokens(English)")
    ax.legend(fontsize=8)
    out.append(("Parity per language (lower is better, 1 = English)", _png(fig)))
    plt.close(fig)

    scripts = sorted({s for r in results for s in r["vocab_by_script"]},
                     key=lambda s: -results[0]["vocab_by_script"].get(s, 0))
    xs = np.arange(len(scripts))
    fig, ax = plt.subplots(figsize=(max(8, len(scripts) * 0.35), 3.5))
    for k, r in enumerate(results):
        ax.bar(xs + k * w, [100 * r["vocab_by_script"].get(s, 0) for s in scripts], w, label=r["name"])
    ax.set_xticks(xs + w * (len(results) - 1) / 2, scripts, rotation=90, fontsize=8)
    ax.set_ylabel("% of vocabulary")
    ax.legend(fontsize=8)
    out.append(("Vocabulary allocation per script (Zyyy: digits/punctuation; bytes: partial characters)", _png(fig)))
    plt.close(fig)
    return out


def write_html(results: list[dict], path: str | Path, title: str = "Tokenizer fairness",
               notes: list[str] | None = None) -> Path:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
             "td:first-child{text-align:left}</style>", f"<h1>{e(title)}</h1>"]
    for n in notes or []:
        parts.append(f"<p>{e(n)}</p>")
    parts.append("<h2>Summary</h2><table><tr><th>tokenizer</th><th>vocab</th><th>worst parity</th>"
                 "<th>std parity</th><th>mean parity</th><th>mean fallback</th><th>round-trip errors</th></tr>")
    for r in results:
        s = r["summary"]
        parts.append(f"<tr><td>{e(r['name'])}</td><td>{r['vocab_size']}</td>"
                     f"<td>{_fmt(s['worst_parity'], 3)} ({e(s['worst_language'])})</td>"
                     f"<td>{_fmt(s['std_parity'], 3)}</td><td>{_fmt(s['mean_parity'], 3)}</td>"
                     f"<td>{_fmt(s['mean_bytes_fallback_rate'], 3)}</td><td>{s['roundtrip_errors']}</td></tr>")
    parts.append("</table>")
    for t, png in charts(results):
        parts.append(f"<h2>{e(t)}</h2><img alt='{e(t)}' src='data:image/png;base64,{png}'>")
    parts.append("<h2>Per language</h2><table><tr><th>lang</th>")
    for r in results:
        for _, label in _METRICS:
            parts.append(f"<th>{e(r['name'])}<br>{label}</th>")
    parts.append("</tr>")
    for lang in _order(results):
        parts.append(f"<tr><td>{e(lang)}</td>")
        for r in results:
            row = r["languages"].get(lang, {})
            parts.extend(f"<td>{_fmt(row.get(m))}</td>" for m, _ in _METRICS)
        parts.append("</tr>")
    parts.append("</table>")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text("\n".join(parts) + "\n", encoding="utf-8")
    os.replace(tmp, p)
    return p
