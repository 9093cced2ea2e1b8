"""A language registry of a test's own: configs/languages.yaml with languages dropped or changed."""

from __future__ import annotations

from pathlib import Path

import yaml

from babelmill.languages import DEFAULT_PATH


def write_registry(path: Path, drop: tuple[str, ...] = (), **changes: dict) -> Path:
    """Copy of the default registry at `path` without the languages in `drop`, and with
    `changes[code]` merged into that language's entry (e.g. en={"space_delimited": False})."""
    doc = yaml.safe_load(Path(DEFAULT_PATH).read_text(encoding="utf-8"))
    doc["languages"] = [{**lang, **changes.get(lang["code"], {})} for lang in doc["languages"]
                        if lang["code"] not in drop]
    for g in doc.get("confusable_groups", {}).values():
        g["members"] = [m for m in g["members"] if m not in drop]
    doc["confusable_groups"] = {k: g for k, g in doc.get("confusable_groups", {}).items() if g["members"]}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
