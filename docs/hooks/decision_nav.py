"""MkDocs hook: every decision record in ``docs/decisions/`` joins the nav, in number order.

Decision records are added by whoever makes a decision, often several at once; listing each
by hand in ``mkdocs.yml`` would make a new record fail the strict build (a page left out of
the nav is a warning) until someone edits the nav. This hook fills the nav section titled
``Decision records`` from the files, so any other page still has to be listed by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SECTION = "Decision records"


def title(record: Path) -> str:
    """``0018-docs-site.md`` -> ``0018 Docs site``."""
    number, _, words = record.stem.partition("-")
    words = words.replace("-", " ")
    return f"{number} {words[:1].upper()}{words[1:]}".strip()


def on_config(config: Any) -> Any:
    """Replace the ``Decision records`` section of the nav with one entry per record file."""
    records = sorted((Path(config["docs_dir"]) / "decisions").glob("[0-9]*.md"))
    entries = [{title(r): f"decisions/{r.name}"} for r in records]
    for item in config["nav"] or []:
        if isinstance(item, dict) and SECTION in item:
            item[SECTION] = entries
            return config
    msg = f"mkdocs.yml: the nav has no '{SECTION}' section for the decision records"
    raise ValueError(msg)
