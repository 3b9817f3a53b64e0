"""Screenshots of a running dashboard for the docs: one PNG per page, in headless Chromium.

``python -m dashboards.screenshots --url http://127.0.0.1:8050 --out docs/screenshots``
opens the live feed, trends, a conversation, a ticker, the alerts and the model page of a
dashboard that is already serving (``attnwatch dashboard``), waits until every chart on
the page is drawn, and saves ``feed.png``, ``trends.png``, ``conversation.png``,
``ticker.png``, ``alerts.png`` and ``model.png`` (full page) under ``--out``.  The
conversation and the ticker are those of the newest chat and news event in the store (asked
of ``/api/events``); with no such event that page is skipped, with a note.

The pages need nothing from the network, so any request for another host is refused.
Chromium is Debian's (``make browser``), driven by Playwright through its executable path;
no browser is downloaded.  Behind a token, give it in ``ATTNWATCH_DASHBOARD_TOKEN``
rather than ``--token``, which other users could read in ``ps``.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import typer
from playwright.sync_api import APIRequestContext, Page, Route, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError

#: Milliseconds to wait for a page and its charts.
TIMEOUT_MS = 30_000
#: Width and height of the browser window; screenshots cover the whole page's height.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
#: True once every ``[data-figure]`` element holds a chart, or the text saying why not.
CHARTS_DRAWN = """
() => Array.from(document.querySelectorAll('[data-figure]'))
  .every((el) => el.querySelector('.main-svg') !== null || el.textContent.trim() !== '')
"""


class ScreenshotError(Exception):
    """A page could not be captured (an HTTP error, no browser, a chart never drawn)."""


@dataclass(frozen=True)
class Shot:
    """One page to capture: the file's stem and the path on the dashboard."""

    name: str
    path: str


def newest(request: APIRequestContext, stream: str) -> dict[str, Any] | None:
    """The newest event of ``stream`` as ``/api/events`` returns it, or ``None``."""
    response = request.get("/api/events", params={"stream": stream, "limit": 1})
    if not response.ok:
        msg = f"/api/events answered {response.status}: {response.text()[:200]}"
        raise ScreenshotError(msg)
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows[0] if rows else None


def shots(request: APIRequestContext) -> list[Shot]:
    """The pages to capture, the conversation and the ticker taken from the newest events."""
    chosen = [Shot("feed", "/")]
    chat = newest(request, "chat")
    if chat is not None and chat.get("event_time"):
        # The last quarter hour up to the newest message: a demo's few minutes fill the
        # charts instead of a sliver at the end of the default day.
        until = datetime.fromisoformat(str(chat["event_time"])) + timedelta(minutes=1)
        since = until - timedelta(minutes=15)
        query = urlencode({"since": since.isoformat(), "until": until.isoformat()})
        chosen.append(Shot("trends", f"/trends?{query}"))
    else:
        chosen.append(Shot("trends", "/trends"))
    if chat is not None and chat.get("conversation_id"):
        chosen.append(Shot("conversation", f"/conversations/{quote(chat['conversation_id'])}"))
    else:
        typer.echo("no chat in the store: no conversation screenshot", err=True)
    news = newest(request, "news")
    if news is not None and news.get("tickers"):
        chosen.append(Shot("ticker", f"/tickers/{quote(news['tickers'][0], safe='')}"))
    else:
        typer.echo("no news with a ticker in the store: no ticker screenshot", err=True)
    chosen += [Shot("alerts", "/alerts"), Shot("model", "/model")]
    return chosen


def capture(page: Page, shot: Shot, out: Path) -> Path:
    """Open ``shot``'s page, wait for its charts and save it as ``out/<name>.png``."""
    response = page.goto(shot.path, wait_until="load")
    if response is None or not response.ok:
        status = response.status if response is not None else "no response"
        msg = f"{shot.path} answered {status}"
        raise ScreenshotError(msg)
    page.wait_for_function(CHARTS_DRAWN)
    undrawn = page.locator("[data-figure]:not(:has(.main-svg))")
    if undrawn.count():
        msg = f"{shot.path}: a chart was not drawn: {undrawn.first.inner_text()}"
        raise ScreenshotError(msg)
    target = out / f"{shot.name}.png"
    page.screenshot(path=target, full_page=True)
    return target


def take(url: str, out: Path, token: str | None, chromium: str) -> list[Path]:
    """Capture every page of the dashboard at ``url`` into ``out``; the files written."""
    origin = urlsplit(url)
    refused: list[str] = []

    def only_the_dashboard(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("data", "blob") or (
            parts.scheme == origin.scheme and parts.netloc == origin.netloc
        ):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("blockedbyclient")

    out.mkdir(parents=True, exist_ok=True)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    written: list[Path] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(
                base_url=url.rstrip("/"), viewport=VIEWPORT, extra_http_headers=headers
            )
            context.set_default_timeout(TIMEOUT_MS)
            context.route("**/*", only_the_dashboard)
            page = context.new_page()
            for shot in shots(context.request):
                written.append(capture(page, shot, out))
                typer.echo(f"{shot.name}: {written[-1]}")
        finally:
            browser.close()
    for request_url in refused:
        typer.echo(f"refused a request for another host: {request_url}", err=True)
    return written


def main(
    url: Annotated[
        str, typer.Option(help="Where the dashboard is serving.")
    ] = "http://127.0.0.1:8050",
    out: Annotated[
        Path, typer.Option(help="Folder for the PNG files (created if missing).")
    ] = Path("docs/screenshots"),
    token: Annotated[
        str | None,
        typer.Option(
            envvar="ATTNWATCH_DASHBOARD_TOKEN",
            help="The dashboard's bearer token; prefer the environment variable.",
            show_default=False,
        ),
    ] = None,
    chromium: Annotated[
        str | None,
        typer.Option(help="Chromium executable (default: chromium on PATH)."),
    ] = None,
) -> None:
    """Save one PNG per page of a dashboard: feed, trends, conversation, ticker, alerts, model."""
    executable = chromium or shutil.which("chromium")
    if executable is None:
        typer.secho(
            "error: chromium is not installed: run `make browser` (Debian's chromium package)",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(2)
    try:
        take(url, out, token, executable)
    except (ScreenshotError, PlaywrightError) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


if __name__ == "__main__":
    typer.run(main)
