"""The process's HTTP endpoint: ``/metrics``, ``/healthz`` and ``/readyz`` on one uvicorn server.

The same server the dashboard runs on (uvicorn, an ASGI app), on a thread of its own, so the
run loop and the demo need no second HTTP stack.  ``/metrics`` is prometheus_client's own
ASGI app (OpenMetrics negotiation from ``Accept``, gzip, ``name[]`` filtering); the probes
answer from anything with ``alive()`` and ``snapshot()`` (:class:`pipeline.health.Health`):

- ``/healthz``: 200 ``{"alive": true}`` while alive, else 503 ``{"alive": false}``;
- ``/readyz``: 200 when the snapshot says ready, else 503; the body is the snapshot.

Any other path is 404; the probes answer GET and HEAD only (405 otherwise).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Protocol

import uvicorn
from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from pipeline.errors import ConfigError

#: Longest wait for the server to start listening, or for it to stop.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class Probes(Protocol):
    """What the probes read: liveness and the readiness snapshot (``Health`` has both)."""

    def alive(self) -> bool:
        """True while the run loop beats."""

    def snapshot(self) -> dict[str, object]:
        """``{"alive", "ready", "components"}``, JSON-ready."""


def probe_app(registry: CollectorRegistry, probes: Probes | None = None) -> Starlette:
    """The ASGI app: ``/metrics`` from ``registry``; the probes too when ``probes`` is given."""
    routes = [Route("/metrics", endpoint=_AsgiApp(make_asgi_app(registry)))]
    if probes is not None:

        async def healthz(_request: Request) -> JSONResponse:
            ok = probes.alive()
            return JSONResponse({"alive": ok}, status_code=200 if ok else 503)

        async def readyz(_request: Request) -> JSONResponse:
            body = probes.snapshot()
            return JSONResponse(body, status_code=200 if body["ready"] is True else 503)

        routes += [
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/readyz", readyz, methods=["GET", "HEAD"]),
        ]
    return Starlette(routes=routes)


class _AsgiApp:
    """An ASGI app as a Starlette endpoint: an object, so Starlette passes the raw call on.

    (A function endpoint would be called with a ``Request``.)  Every method reaches it:
    prometheus_client answers OPTIONS and 405 itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)


class ProbeServer:
    """``probe_app`` served by uvicorn on a daemon thread, on a socket bound up front."""

    def __init__(self, registry: CollectorRegistry, probes: Probes | None = None) -> None:
        self._app = probe_app(registry, probes)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Listen on ``host:port`` (0: any free port) and return the bound port.

        A port that is taken or an address that cannot be bound raises ``ConfigError``;
        binding here, before uvicorn starts, makes that an error and not a dead thread.
        """
        if self._server is not None:
            msg = "Metrics.serve called twice; close() the running server first"
            raise RuntimeError(msg)
        sock = _bind(host, port)
        config = uvicorn.Config(self._app, access_log=False, log_config=None, lifespan="off")
        server = uvicorn.Server(config)
        # uvicorn installs signal handlers only on the main thread: the process keeps its own.
        thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])),
            name=f"attnwatch-http-{sock.getsockname()[1]}",
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            thread.join(0.01)
        self._server, self._thread, self._socket = server, thread, sock
        if not server.started:
            self.close()
            msg = f"HTTP server on {host}:{port} did not start within {START_TIMEOUT_S:g} s"
            raise ConfigError(msg)
        return int(sock.getsockname()[1])

    def close(self) -> None:
        """Stop the server and free its port (idempotent); waits up to ``STOP_TIMEOUT_S``."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is None:
            return
        server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
        if sock is not None:
            sock.close()


def _bind(host: str, port: int) -> socket.socket:
    try:
        # The socket family is the address's own (an IPv6 host needs AF_INET6).
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        msg = f"cannot serve metrics on {host}:{port} ({exc}); choose --metrics-port or 0"
        raise ConfigError(msg) from exc
    return sock
