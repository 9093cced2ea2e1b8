"""The balance table printed by `babelmill balance` and `make demo`."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def balance_table(report: dict) -> Table:
    cfg = report["config"]
    title = (f"balance: {cfg['policy']}" + (f" (alpha {cfg['alpha']})" if cfg["policy"] == "temperature" else "")
             + f", max {cfg['max_epochs']} epochs, tokens by {report['token_counter']['kind']}")
    tot = report["totals"]
    t = Table(title=title, show_footer=True)
    t.add_column("lang", footer="total")
    t.add_column("docs before", justify="right", footer=f"{tot['docs_before']:,}")
    t.add_column("tokens before", justify="right", footer=f"{tot['tokens_before']:,}")
    t.add_column("share before", justify="right", footer="100%")
    t.add_column("tokens after", justify="right", footer=f"{tot['tokens_after']:,}")
    t.add_column("weight", justify="right", footer="100%")
    t.add_column("epochs", justify="right")
    total_before = tot["tokens_before"] or 1
    for lang, v in sorted(report["languages"].items(), key=lambda kv: -kv[1]["tokens_before"]):
        t.add_row(lang, f"{v['docs_before']:,}", f"{v['tokens_before']:,}", f"{v['tokens_before'] / total_before:.1%}",
                  f"{v['tokens_after']:,}", f"{v['weight']:.1%}", f"{v['epochs']:.2f}" + (" (cap)" if v["capped"] else ""))
    return t


def print_balance(report: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(balance_table(report))
    note = f"budget {report['budget_tokens']:,} tokens, realised {report['realised_tokens']:,}"
    if report["shortfall_tokens"]:
        note += f" (short by {report['shortfall_tokens']:,}: every language is at its epoch cap)"
    if report["excluded"]:
        note += f"; not balanced (outside the target languages): {report['excluded']}"
    console.print(note)
