"""Human-readable tables from a manifest (printed by `babelmill run` and `make demo`)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def language_table(manifest: dict, title: str | None = None) -> Table:
    """One row per language: in, kept, dropped, and the drop reasons as `stage:reason n`."""
    counts = manifest["counts"]
    t = Table(title=title or f"{manifest['name']}: documents per language", show_footer=True)
    t.add_column("lang", footer="total")
    t.add_column("in", justify="right", footer=str(counts["docs_in"]))
    t.add_column("kept", justify="right", footer=str(counts["kept"]))
    t.add_column("dropped", justify="right", footer=str(counts["dropped"]))
    totals: dict[str, int] = {}
    for v in counts["by_lang"].values():
        for r, n in v["reasons"].items():
            totals[r] = totals.get(r, 0) + n
    t.add_column("why dropped", footer=_reasons(totals))
    for lang, v in sorted(counts["by_lang"].items(), key=lambda kv: (-kv[1]["kept"], kv[0])):
        t.add_row(lang, str(v["in"]), str(v["kept"]), str(v["dropped"]), _reasons(v["reasons"]))
    return t


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def print_summary(manifest: dict, console: Console | None = None) -> None:
    console = console or Console()
    console.print(language_table(manifest))
    c = manifest["counts"]
    u = manifest["units"]
    console.print(
        f"in {c['docs_in']} = kept {c['kept']} + dropped {c['dropped']} "
        f"({'balanced' if c['balanced'] else 'NOT BALANCED'}); "
        f"{u['total']} work units, {u['reused_from_earlier_run']} reused from an earlier run; "
        f"engine {manifest['engine']}, {manifest['seconds']} s"
    )
    # reported beside the invariant: these records never became documents or reject rows
    if c.get("records_lost"):
        console.print(f"at least {c['records_lost']} more records were in unreadable parts of the input (records_lost)")
    skipped = manifest.get("inputs_skipped", {}).get("count", 0)
    if skipped:
        console.print(f"{skipped} input(s) skipped, listed in the manifest (inputs_skipped)")
    dup = c.get("duplicate_ids") or {}
    if dup.get("within_units") or dup.get("kept_same_id"):
        console.print(f"duplicate ids: {dup.get('within_units', 0)} reused within a work unit, "
                      f"{dup.get('kept_same_id', 0)} duplicates dropped for a document with the same id")
