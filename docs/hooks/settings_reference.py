"""MkDocs hook: the configuration page's table of every setting, generated from the code.

``docs/configuration.md`` holds :data:`MARKER` where the table goes; this hook puts
``attnwatch.settings.settings_markdown()`` there (what ``attnwatch config --markdown``
prints) while the site is built.  A setting is documented once, in its field's
description: adding one touches its group and the code that reads it, never this page.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

PAGE = "configuration.md"
MARKER = (
    "<!-- settings-reference: the table of every setting, generated at build time from "
    "attnwatch.settings (docs/hooks/settings_reference.py) -->"
)


def render(markdown: str) -> str:
    """``markdown`` with :data:`MARKER` replaced by the settings table; no marker: an error."""
    if MARKER not in markdown:
        msg = f"docs/{PAGE} has lost its settings-reference marker"
        raise ValueError(msg)
    from attnwatch.settings import settings_markdown

    return markdown.replace(MARKER, settings_markdown())


def on_config(config: Any) -> Any:
    """Make the checkout beside ``mkdocs.yml`` importable (``make docs`` from the repo)."""
    root = Path(config["config_file_path"]).parent
    if (root / "attnwatch").is_dir() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return config


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Fill the configuration page's table; other pages pass unchanged."""
    return render(markdown) if page.file.src_uri == PAGE else markdown
