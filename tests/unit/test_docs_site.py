"""The reference site in ``docs/``: ``mkdocs build --strict`` passes, and fails on a broken link.

The site is built the way ``make docs`` builds it (mkdocs-material, a dev dependency), into a
temporary folder. The failure cases build a temporary copy of ``docs/`` and ``mkdocs.yml``
with one fault put in, so each proves the strict build would catch that fault in the tree.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "mkdocs.yml"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BUILD_TIMEOUT_S = 120
README_MAX_LINES = 250
# An asset element that makes a reader's browser fetch from another host (a font, a CDN script).
EXTERNAL_ASSET = re.compile(
    r"<(?:script|img|iframe)[^>]+src=\"(?:https?:)?//|<link[^>]+href=\"(?:https?:)?//"
)
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of ``config`` into ``site`` (never with -q: it hides warnings)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
        env=env,
        cwd=config.parent,
    )


@pytest.mark.slow
def test_the_site_builds_strictly_with_every_page_and_nothing_fetched(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = build(CONFIG, site)
    assert result.returncode == 0, result.stderr
    built = {p.relative_to(site).with_suffix(".md") for p in site.rglob("*.html")}
    pages = {p.relative_to(DOCS) for p in DOCS.rglob("*.md")}
    assert pages <= built, f"pages not built: {sorted(map(str, pages - built))}"
    assert (site / "operations.html").is_file()
    assert list((site / "decisions").glob("*.html")), "no decision record in the site"
    for html in site.rglob("*.html"):
        found = EXTERNAL_ASSET.search(html.read_text(encoding="utf-8"))
        assert found is None, f"{html.relative_to(site)} fetches from another host: {found}"


def break_link(docs: Path) -> str:
    with (docs / "faults.md").open("a", encoding="utf-8") as f:
        f.write("\nSee [the missing page](no-such-page.md).\n")
    return "no-such-page.md"


def break_anchor(docs: Path) -> str:
    with (docs / "metrics.md").open("a", encoding="utf-8") as f:
        f.write("\nSee [a section that is not there](alerting.md#no-such-section).\n")
    return "no-such-section"


def leave_a_page_out_of_the_nav(docs: Path) -> str:
    (docs / "not-in-the-nav.md").write_text("# Not in the nav\n", encoding="utf-8")
    return "not-in-the-nav.md"


def delete_a_page_in_the_nav(docs: Path) -> str:
    (docs / "dependencies.md").unlink()
    return "dependencies.md"


@pytest.mark.parametrize(
    "fault",
    [break_link, break_anchor, leave_a_page_out_of_the_nav, delete_a_page_in_the_nav],
    ids=lambda fault: fault.__name__,
)
@pytest.mark.slow
def test_a_fault_in_a_copy_of_the_docs_fails_the_strict_build(
    tmp_path: Path, fault: Callable[[Path], str]
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(CONFIG, copy / "mkdocs.yml")
    named = fault(copy / "docs")
    result = build(copy / "mkdocs.yml", tmp_path / "site")
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert "in strict mode" in said
    assert named in said


def test_the_readme_is_a_front_door_whose_links_into_docs_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    targets = [t for t in MARKDOWN_LINK.findall(text) if "://" not in t]
    assert any(t.startswith("docs/") for t in targets), "the README points at no docs page"
    for target in targets:
        path, _, anchor = target.partition("#")
        file = ROOT / path
        assert file.exists(), f"README links to {target}, which does not exist"
        if anchor and file.suffix == ".md":
            headings = re.findall(r"^#+ (.+)$", file.read_text(encoding="utf-8"), re.MULTILINE)
            assert anchor in {slugify(h, "-") for h in headings}, f"README: no #{anchor} in {path}"


@pytest.mark.slow
def test_a_new_decision_record_joins_the_nav_without_an_edit(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(DOCS, copy / "docs")
    shutil.copy(CONFIG, copy / "mkdocs.yml")
    record = copy / "docs" / "decisions" / "9999-a-new-choice.md"
    record.write_text("# 9999: A new choice\n\n## Context\nNone.\n", encoding="utf-8")
    result = build(copy / "mkdocs.yml", tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr
    home = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert 'href="decisions/9999-a-new-choice.html"' in home
    assert "9999 A new choice" in home
    assert not (tmp_path / "site" / "hooks").exists(), "the nav hook was published as a page"


def test_the_configuration_page_holds_the_settings_reference() -> None:
    # The table is generated at build time (docs/hooks/settings_reference.py, what
    # `attnwatch config --markdown` prints), so a setting added, renamed or redescribed
    # is on the page without editing it.
    sys.path.insert(0, str(DOCS / "hooks"))
    try:
        from settings_reference import render  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(DOCS / "hooks"))
    from attnwatch.settings import settings_markdown

    page = render((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert settings_markdown() in page, "regenerate docs/configuration.md's table"


def test_the_built_configuration_page_shows_every_setting(tmp_path: Path) -> None:
    from attnwatch.settings import settings_markdown

    result = build(CONFIG, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "site" / "configuration.html").read_text(encoding="utf-8")
    settings = re.findall(r"^\| `([^`]+)` \| `(ATTNWATCH_[A-Z_]+)`", settings_markdown(), re.M)
    assert len(settings) > 50
    for dotted, env in settings:
        assert f"<code>{dotted}</code>" in html and f"<code>{env}</code>" in html, dotted
