"""The analyst web app: thin FastAPI routes over the query layer.

Routes parse parameters (:mod:`dashboards.data.filters`), ask :mod:`dashboards.data.queries` or a
page builder (:mod:`dashboards.web.pages`) and answer with a template, a fragment, JSON or a
file.  A bad parameter is a ``400`` (``422`` for a mistyped number) with a message, an
unknown conversation or event a ``404``, an unreachable store a ``503``; HTML for
browsers, ``{"detail": ...}`` for everything else.

Pages: ``/`` (live feed; fragment ``/feed``, JSON ``/api/events``, live ``/events/stream``),
``/trends`` (JSON ``/api/trends``), ``/conversations/{id}``, ``/tickers/{symbol}``,
``/alerts``, ``/model``.  Writes: ``POST /events/{input_id}/corrections`` and
Alertmanager's ``POST /hooks/alertmanager`` (:mod:`dashboards.web.hooks`).  Files:
``/corrections.csv``, ``/export.csv``, ``/export.parquet``.  ``/healthz`` needs no token.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from dashboards.data.aggregates import data_span
from dashboards.data.corrections import TASKS, CorrectionTable, check_correction
from dashboards.data.exports import csv_chunks, parquet_bytes
from dashboards.data.filters import (
    BadParameter,
    Cursor,
    EventFilter,
    parse_ticker,
    parse_time,
    parse_window,
    wants_data_range,
)
from dashboards.data.model_info import read_labels, read_summary
from dashboards.data.ops_alerts import OpsAlertTable
from dashboards.data.queries import MAX_EXPORT_ROWS, MAX_PAGE, MAX_TURNS, EventRow, Queries
from dashboards.web import hooks, pages, views
from dashboards.web.auth import BearerTokenMiddleware, check_bind
from dashboards.web.forms import local_path, read_form, same_origin
from dashboards.web.live import live_events
from pipeline.config import AlertingSettings, DashboardSettings
from pipeline.errors import StoreError
from pipeline.store import open_store
from pipeline.store.alerts import AlertTable

ATTENTION_TASKS = ("sentiment", "intent")


def _filter(
    stream: str = "",
    channel: str = "",
    intent: str = "",
    sentiment: str = "",
    ticker: str = "",
    source: str = "",
    since: str = "",
    until: str = "",
    q: str = "",
) -> EventFilter:
    return EventFilter.parse(
        stream=stream,
        channel=channel,
        intent=intent,
        sentiment=sentiment,
        ticker=ticker,
        source=source,
        since=since,
        until=until,
        q=q,
    )


def _attention(attention: str = "sentiment") -> str:
    if attention not in ATTENTION_TASKS:
        msg = f"unknown attention {attention!r}: use sentiment or intent"
        raise BadParameter(msg)
    return attention


Filter = Annotated[EventFilter, Depends(_filter)]
Attention = Annotated[str, Depends(_attention)]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE)]
Range = Annotated[str, Query(alias="range")]
ExportLimit = Annotated[int, Query(ge=1, le=MAX_EXPORT_ROWS)]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def create_app(
    dashboard: DashboardSettings,
    store_url: str,
    model_dir: Path,
    *,
    alert_current_s: int | None = None,
    live_poll_s: float = 1.0,
    live_max_s: float = 300.0,
) -> FastAPI:
    """The dashboard over the store at ``store_url``, guarded as ``dashboard`` asks.

    Refuses (:class:`~pipeline.errors.ConfigError`) a non-loopback ``dashboard.host``
    without ``dashboard.token``; with a token every path but ``/healthz`` needs
    ``Authorization: Bearer <token>``.  Opens the store (refusing one that ``attnwatch
    migrate`` has not brought to this version's schema; it runs no DDL) before returning.
    ``model_dir`` is the saved model (labels, model page); ``alert_current_s`` the alert
    evaluator's current window (``alerts.current_s``; unset: its default).
    ``live_poll_s`` and ``live_max_s`` are the live stream's poll interval and connection bound.
    """
    # What dashboards.web.auth.guard does, kept on the FastAPI object so every way of
    # serving it (uvicorn, tests) gets the same guard.
    token = dashboard.token
    check_bind(dashboard.host, token)
    # No DDL here (migrate=False): `attnwatch migrate` owns the schema, so the dashboard can
    # run as a read-only store user.
    store = open_store(store_url, migrate=False)
    try:
        corrections = CorrectionTable(store.engine)
        alert_table = AlertTable(store.engine)
        ops_table = OpsAlertTable(store.engine)
    except StoreError:
        store.close()
        raise
    queries = Queries(store, corrections)
    templates = views.templates()
    if alert_current_s is None:
        alert_current_s = AlertingSettings().current_s
    lead = timedelta(seconds=alert_current_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="attnwatch dashboard", lifespan=lifespan, docs_url=None, redoc_url=None)
    # Pages with shaded words compress ninefold; level 4 because a 10,000-row CSV export
    # (15 MB) takes 0.17 s to 3.5 MB, level 9 0.6 s to 3.2 MB.  SSE is never compressed.
    app.add_middleware(GZipMiddleware, minimum_size=1000, compresslevel=4)
    if token is not None and token.get_secret_value():
        app.add_middleware(BearerTokenMiddleware, token=token)  # outermost: checked first

    def error(request: Request, status: int, message: str) -> Response:
        if _wants_html(request):
            context = {"status": status, "message": message}
            return templates.TemplateResponse(request, "error.html", context, status_code=status)
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(BadParameter)
    async def bad_parameter(request: Request, exc: BadParameter) -> Response:
        return error(request, 400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors()]
        return error(request, 422, "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        response = error(request, exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response

    @app.exception_handler(StoreError)
    async def store_down(request: Request, exc: StoreError) -> Response:
        return error(request, 503, f"the analyst store is unavailable: {exc}")

    def feed_context(f: EventFilter, cursor: str, limit: int, attention: str) -> dict[str, Any]:
        page = queries.feed(f, Cursor.decode(cursor), limit)
        params = {**f.params(), "attention": attention, "limit": limit}
        return {
            "filter": f,
            "params": params,
            "rows": page.rows,
            "attention": attention,
            "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
            "labels": read_labels(model_dir),
            "paged": bool(cursor),
        }

    def render_rows(rows: Sequence[EventRow], attention: str) -> str:
        labels = read_labels(model_dir)
        context = {"rows": rows, "attention": attention, "labels": labels}
        return templates.get_template("_rows.html").render(context)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        queries.ping()
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def feed_page(
        request: Request, f: Filter, attention: Attention, cursor: str = "", limit: PageSize = 50
    ) -> Response:
        context = feed_context(f, cursor, limit, attention)
        return templates.TemplateResponse(request, "feed.html", context)

    @app.get("/feed", response_class=HTMLResponse)
    def feed_fragment(
        request: Request, f: Filter, attention: Attention, cursor: str = "", limit: PageSize = 50
    ) -> Response:
        context = feed_context(f, cursor, limit, attention)
        return templates.TemplateResponse(request, "_feed.html", context)

    @app.get("/api/events")
    def feed_json(f: Filter, cursor: str = "", limit: PageSize = 50) -> dict[str, Any]:
        page = queries.feed(f, Cursor.decode(cursor), limit)
        return {
            "rows": [r.to_json() for r in page.rows],
            "next_cursor": page.next_cursor.encode() if page.next_cursor else None,
        }

    @app.get("/events/stream")
    async def live(
        request: Request,
        f: Filter,
        attention: Attention,
        after: str = "",
        last_event_id: Annotated[str, Header()] = "",
    ) -> StreamingResponse:
        start = Cursor.decode(last_event_id or after, "Last-Event-ID or after")
        events = live_events(
            queries,
            f,
            start,
            lambda rows: render_rows(rows, attention),
            request.is_disconnected,
            poll_s=live_poll_s,
            max_s=live_max_s,
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events, media_type="text/event-stream", headers=headers)

    @app.post("/events/{input_id:path}/corrections")
    async def relabel(request: Request, input_id: str) -> Response:
        same_origin(request)
        form = await read_form(request)
        row = await run_in_threadpool(queries.event, input_id)
        if row is None:
            raise HTTPException(404, f"no event {input_id!r} in the store")
        task, label, analyst = check_correction(
            form.get("task", ""),
            form.get("label", ""),
            form.get("analyst", ""),
            read_labels(model_dir),
            has_intent=row.intent_label is not None,
        )
        await run_in_threadpool(
            corrections.add, input_id, task, row.label(task), label, analyst, datetime.now(UTC)
        )
        if request.headers.get("x-live") == "fragment":
            updated = await run_in_threadpool(queries.event, input_id)
            html = render_rows([updated] if updated else [], form.get("attention", "sentiment"))
            return HTMLResponse(html)
        target = local_path(form.get("next")) or f"/#{views.event_anchor(input_id)}"
        return RedirectResponse(target, status_code=303)

    @app.get("/corrections.csv")
    def corrections_csv() -> Response:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["text", *TASKS], lineterminator="\n")
        writer.writeheader()
        writer.writerows(corrections.labelled())
        return Response(
            buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="corrections.csv"'},
        )

    @app.get("/export.csv")
    def export_csv(f: Filter, limit: ExportLimit = 10_000) -> StreamingResponse:
        return StreamingResponse(
            csv_chunks(queries, f, limit),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="attnwatch-events.csv"'},
        )

    @app.get("/export.parquet")
    def export_parquet(f: Filter, limit: ExportLimit = 10_000) -> Response:
        return Response(
            parquet_bytes(queries, f, limit),
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": 'attachment; filename="attnwatch-events.parquet"'},
        )

    def trends_view(f: EventFilter, range_: str, by: str) -> pages.TrendsView:
        unbounded = dataclasses.replace(f, since=None, until=None)
        wanted = wants_data_range(range_, f.since, f.until)
        span = data_span(store.engine, unbounded) if wanted else None
        window = parse_window(range_, f.since, f.until, datetime.now(UTC), span)
        # News have no channel: split them by source unless asked otherwise.
        split = by or ("source" if f.stream == "news" else "channel")
        return pages.trends(store.engine, unbounded, window, split)

    @app.get("/trends", response_class=HTMLResponse)
    def trends_page(request: Request, f: Filter, range_: Range = "", by: str = "") -> Response:
        view = trends_view(f, range_, by)
        context = {"view": view, "filter": f, "params": {**f.params(), "by": view.by}}
        return templates.TemplateResponse(request, "trends.html", context)

    @app.get("/api/trends")
    def trends_json(f: Filter, range_: Range = "", by: str = "") -> dict[str, Any]:
        view = trends_view(f, range_, by)
        return {
            "start": view.window.start.isoformat(),
            "end": view.window.end.isoformat(),
            "bucket_s": view.bucket_s,
            "by": view.by,
            "groups": view.groups,
            "groups_left_out": view.groups_left_out,
            "total": view.total,
            "figures": view.figures,
        }

    @app.get("/conversations/{conversation_id:path}", response_class=HTMLResponse)
    def conversation_page(request: Request, conversation_id: str) -> Response:
        view = pages.conversation(queries, conversation_id, MAX_TURNS)
        if not view.turns:
            raise HTTPException(404, f"no conversation {conversation_id!r} in the store")
        return templates.TemplateResponse(request, "conversation.html", {"view": view})

    @app.get("/tickers/{symbol}", response_class=HTMLResponse)
    def ticker_page(
        request: Request, symbol: str, range_: Range = "", since: str = "", until: str = ""
    ) -> Response:
        start, end = parse_time(since, "since"), parse_time(until, "until")
        ticker = parse_ticker(symbol)
        if ticker is None:
            msg = "a ticker symbol is required"
            raise BadParameter(msg)
        wanted = wants_data_range(range_, start, end)
        span = data_span(store.engine, EventFilter(ticker=ticker)) if wanted else None
        window = parse_window(range_, start, end, datetime.now(UTC), span)
        view = pages.ticker(store.engine, queries, ticker, window)
        return templates.TemplateResponse(request, "ticker.html", {"view": view})

    @app.get("/alerts", response_class=HTMLResponse)
    def alerts_page(
        request: Request, status: str = "all", limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> Response:
        views_ = pages.alerts(alert_table, status, limit, lead)
        ops = pages.ops_alerts(ops_table, status, limit)
        return templates.TemplateResponse(
            request, "alerts.html", {"alerts": views_, "ops": ops, "status": status}
        )

    @app.get("/model", response_class=HTMLResponse)
    def model_page(request: Request) -> Response:
        summary = read_summary(model_dir)
        context = {"model": summary, "confusion_figures": pages.confusion_figures(summary)}
        return templates.TemplateResponse(request, "model.html", context)

    @app.get("/vendor/plotly.min.js")
    def plotly() -> FileResponse:
        return FileResponse(
            views.plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.include_router(hooks.router(ops_table, token))
    app.mount("/static", StaticFiles(directory=views.STATIC_DIR), name="static")
    return app
