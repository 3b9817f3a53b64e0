"""Access control of the dashboard: a bearer token whenever it listens beyond loopback.

The dashboard shows customers' messages, so anything that can reach its port must prove
it may read them.  On a loopback address only local users can connect, and a token is
optional; on any other address (``0.0.0.0`` included) :func:`check_bind` refuses to start
without one.  :func:`guard` is the one call the web app makes: it checks the bind and
wraps the app in :class:`BearerTokenMiddleware` when a token is set.

The middleware is ASGI, so FastAPI or Starlette can mount it; it reads the bearer token and
the session cookie with FastAPI's security classes (``HTTPBearer``, ``APIKeyCookie``), and
:class:`BearerToken` is the same check as a route dependency.  The sign-in form
(``/login``) is a small FastAPI app of its own, its field parsed by FastAPI's ``Form``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Annotated, Any

from fastapi import FastAPI, Form
from fastapi.responses import Response
from fastapi.security import APIKeyCookie, HTTPBearer
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request

from pipeline.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths answered without a token: a load balancer's health check carries none.
OPEN_PATHS = frozenset({"/healthz"})
#: Where a browser trades the token for a session cookie.
LOGIN_PATH = "/login"
SESSION_COOKIE = "attnwatch_session"

#: Shortest token accepted: shorter ones can be guessed by trying.
MIN_TOKEN_LENGTH = 16
#: Sign-in attempts (POST /login) allowed per client address, in a moving window.
LOGIN_RATE_LIMIT = "10/minute"
#: Largest sign-in form read; the rest of a longer body is never read.
LOGIN_MAX_BYTES = 4096
_SCHEME = "bearer"
_WWW_AUTHENTICATE = 'Bearer realm="attnwatch"'


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address: 127.0.0.0/8, ``::1`` or ``localhost``."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False  # another host name: it may resolve to anything
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # ::ffff:127.0.0.1
    return address.is_loopback


def check_bind(host: str, token: SecretStr | None) -> None:
    """Refuse to serve on ``host`` without a token unless it is a loopback address.

    Raises :class:`~pipeline.errors.ConfigError` when ``host`` is not loopback and no
    token is set, or when a token is set but shorter than :data:`MIN_TOKEN_LENGTH`.
    """
    value = token.get_secret_value() if token is not None else ""
    if value and len(value) < MIN_TOKEN_LENGTH:
        msg = (
            f"dashboard_token is shorter than {MIN_TOKEN_LENGTH} characters; make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
        raise ConfigError(msg)
    if not value and not is_loopback(host):
        msg = (
            f"the dashboard would listen on {host!r}, which is not a loopback address, "
            "without a token: set ATTNWATCH_DASHBOARD_TOKEN (clients then send "
            "`Authorization: Bearer <token>`) or bind to 127.0.0.1"
        )
        raise ConfigError(msg)


def authorized(authorization_header: str | None, token: SecretStr | None) -> bool:
    """Whether an ``Authorization`` header carries ``token`` as a bearer token.

    The comparison takes the same time wherever the first wrong character is
    (:func:`hmac.compare_digest`).  With no token configured nothing is authorized.
    """
    if token is None or not token.get_secret_value() or authorization_header is None:
        return False
    scheme, _, presented = authorization_header.strip().partition(" ")
    if scheme.lower() != _SCHEME:
        return False
    return hmac.compare_digest(
        presented.strip().encode("utf-8"), token.get_secret_value().encode("utf-8")
    )


class BearerToken(HTTPBearer):
    """FastAPI security dependency: the request must carry ``token`` as its bearer token.

    For routes that only a machine calls (Alertmanager's webhook): a browser's session cookie
    does not count.  With no token configured every request passes (the bind check guards
    that case).  A missing or wrong token is ``401`` with ``WWW-Authenticate: Bearer``.
    """

    def __init__(self, token: SecretStr | None, detail: str) -> None:
        super().__init__(auto_error=False, description="The dashboard token, as a bearer token.")
        self._token = token if token is not None and token.get_secret_value() else None
        self._detail = detail

    async def __call__(self, request: HTTPConnection) -> None:
        """Pass, or raise ``HTTPException(401)``."""
        if self._token is None:
            return
        credentials = await super().__call__(request)
        presented = "" if credentials is None else credentials.credentials
        if not authorized(f"Bearer {presented}", self._token):
            raise HTTPException(401, self._detail, headers={"WWW-Authenticate": _WWW_AUTHENTICATE})


class BearerTokenMiddleware:
    """ASGI middleware: HTTP and WebSocket requests need ``Authorization: Bearer <token>``.

    A request without it, or with another token, gets ``401`` with
    ``WWW-Authenticate: Bearer`` (a WebSocket handshake is closed, code 1008) and never
    reaches the app; paths in ``open_paths`` and lifespan events pass through.
    """

    def __init__(
        self,
        app: ASGIApp,
        token: SecretStr,
        open_paths: Collection[str] = OPEN_PATHS,
        login_rate_limit: str = LOGIN_RATE_LIMIT,
    ) -> None:
        if not token.get_secret_value():
            msg = "BearerTokenMiddleware needs a non-empty token"
            raise ValueError(msg)
        self.app = app
        self._token = token
        self._open_paths = frozenset(open_paths)
        # The `limits` library (what slowapi builds on), in memory: one dashboard process.
        self._bearer = HTTPBearer(auto_error=False)
        self._session = APIKeyCookie(name=SESSION_COOKIE, auto_error=False)
        self._login_limit: RateLimitItem = parse(login_rate_limit)
        self._login_limiter = MovingWindowRateLimiter(MemoryStorage())
        self._login_app = login_app(token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request to the app if it carries the token, else answer 401."""
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self._open_paths:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope.get("path") == LOGIN_PATH:
            await self._login(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        if await self._authenticated(scope):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        elif scope.get("method") == "GET" and "text/html" in (_header(scope, b"accept") or ""):
            await _respond(send, 303, b"", [(b"location", LOGIN_PATH.encode())])
        else:
            await _unauthorized(send, presented=header is not None)

    async def _authenticated(self, scope: Scope) -> bool:
        """The bearer token or the session cookie, read by FastAPI's security classes."""
        # Header values as an HTTP parser hands them on: surrounding whitespace stripped.
        headers = [(bytes(k), bytes(v).strip()) for k, v in scope.get("headers", ())]
        connection = HTTPConnection({**scope, "headers": headers})
        bearer = await self._bearer(connection)
        if bearer is not None and authorized(f"Bearer {bearer.credentials}", self._token):
            return True
        presented = await self._session(connection)
        return presented is not None and hmac.compare_digest(
            presented.encode("latin-1", "replace"), session_value(self._token).encode()
        )

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /login``: a form for the token; ``POST``: a session cookie if it is right.

        Browsers cannot add an ``Authorization`` header to page loads or server-sent
        events, so an analyst proves the token once and the browser keeps a cookie that
        holds an HMAC of the token (never the token itself), ``HttpOnly``,
        ``SameSite=Strict``, ``Secure`` over HTTPS.  Sign-in attempts are limited per
        client address (:data:`LOGIN_RATE_LIMIT`); beyond it the answer is 429 with
        ``Retry-After``.
        """
        if scope.get("method") == "POST":
            client = scope.get("client") or ("unknown", 0)
            if not self._login_limiter.hit(self._login_limit, str(client[0])):
                # Guessing the token by trying is bounded per address, right token or not.
                stats = self._login_limiter.get_window_stats(self._login_limit, str(client[0]))
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                await _respond(
                    send,
                    429,
                    b"too many sign-in attempts; try again later\n",
                    [
                        (b"retry-after", str(retry_after).encode()),
                        (b"content-type", b"text/plain; charset=utf-8"),
                    ],
                )
                return
            receive = _capped(receive, LOGIN_MAX_BYTES)
        # A scope without a query string (allowed to a bare ASGI caller) is read as empty.
        await self._login_app({"query_string": b"", **scope}, receive, send)


def login_app(token: SecretStr) -> FastAPI:
    """``GET /login``: the sign-in form; ``POST /login``: a session cookie for the right token.

    The form's ``token`` field is read by FastAPI's ``Form`` (python-multipart); a form
    without it is a wrong token.  Rate limiting and the body bound are the middleware's.
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get(LOGIN_PATH)
    async def form() -> Response:
        return _html(200, _login_page(failed=False))

    @app.post(LOGIN_PATH)
    async def sign_in(
        request: Request, presented: Annotated[str, Form(alias="token")] = ""
    ) -> Response:
        if not authorized(f"Bearer {presented}", token):
            return _html(401, _login_page(failed=True))
        secure = "; Secure" if request.scope.get("scheme") == "https" else ""
        cookie = (
            f"{SESSION_COOKIE}={session_value(token)}; Path=/; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        headers = {"location": "/", "set-cookie": cookie, "cache-control": "no-store"}
        return Response(status_code=303, headers=headers)

    return app


def guard(app: ASGIApp, host: str, token: SecretStr | None) -> ASGIApp:
    """``app`` ready to serve on ``host``: :func:`check_bind`, then the middleware if a token."""
    check_bind(host, token)
    if token is None or not token.get_secret_value():  # an empty variable means unset
        return app
    return BearerTokenMiddleware(app, token)


def session_value(token: SecretStr) -> str:
    """The session cookie's value for ``token``: an HMAC, so the cookie never holds the token."""
    key = token.get_secret_value().encode("utf-8")
    return hmac.new(key, b"attnwatch-dashboard-session", hashlib.sha256).hexdigest()


def _capped(receive: Receive, limit: int) -> Receive:
    """``receive`` that ends the request body after ``limit`` bytes (the rest is not read)."""
    left = limit

    async def capped() -> Message:
        nonlocal left
        if left <= 0:
            return {"type": "http.request", "body": b"", "more_body": False}
        message = await receive()
        if message.get("type") == "http.request":
            body = bytes(message.get("body", b""))[:left]
            left -= len(body)
            more = bool(message.get("more_body")) and left > 0
            message = {**message, "body": body, "more_body": more}
        return message

    return capped


def _html(status: int, body: bytes) -> Response:
    return Response(
        body,
        status_code=status,
        media_type="text/html; charset=utf-8",
        headers={"cache-control": "no-store"},
    )


def _login_page(*, failed: bool) -> bytes:
    error = '<p role="alert">That token is not right.</p>' if failed else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        "<title>attnwatch: sign in</title></head><body><main>"
        "<h1>attnwatch dashboard</h1>"
        f'{error}<form method="post" action="{LOGIN_PATH}">'
        '<label for="token">Dashboard token</label> '
        '<input id="token" name="token" type="password" autocomplete="current-password" required>'
        ' <button type="submit">Sign in</button></form></main></body></html>'
    ).encode()


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                *headers,
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if bytes(key).lower() == name:
            return bytes(value).decode("latin-1")
    return None


async def _unauthorized(send: Send, *, presented: bool) -> None:
    challenge = _WWW_AUTHENTICATE + (', error="invalid_token"' if presented else "")
    body = b"unauthorized: send Authorization: Bearer <token>\n"
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", challenge.encode("latin-1")),
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("latin-1")),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
