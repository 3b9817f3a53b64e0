"""Access control of the dashboard: a bearer token whenever it listens beyond loopback.

The dashboard shows customers' messages, so anything that can reach its port must prove
it may read them.  On a loopback address only local users can connect, and a token is
optional; on any other address (``0.0.0.0`` included) :func:`check_bind` refuses to start
without one.  :func:`guard` is the one call the web app makes: it checks the bind and
wraps the app in :class:`BearerTokenMiddleware` when a token is set.

The middleware is plain ASGI (no framework import), so FastAPI or Starlette can mount it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import Any

from pydantic import SecretStr

from pipeline.errors import ConfigError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Paths answered without a token: a load balancer's health check carries none.
OPEN_PATHS = frozenset({"/healthz"})
#: Shortest token accepted: shorter ones can be guessed by trying.
MIN_TOKEN_LENGTH = 16
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


class BearerTokenMiddleware:
    """ASGI middleware: HTTP and WebSocket requests need ``Authorization: Bearer <token>``.

    A request without it, or with another token, gets ``401`` with
    ``WWW-Authenticate: Bearer`` (a WebSocket handshake is closed, code 1008) and never
    reaches the app; paths in ``open_paths`` and lifespan events pass through.
    """

    def __init__(
        self, app: ASGIApp, token: SecretStr, open_paths: Collection[str] = OPEN_PATHS
    ) -> None:
        if not token.get_secret_value():
            msg = "BearerTokenMiddleware needs a non-empty token"
            raise ValueError(msg)
        self.app = app
        self._token = token
        self._open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request to the app if it carries the token, else answer 401."""
        if scope["type"] not in ("http", "websocket") or scope.get("path") in self._open_paths:
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        if authorized(header, self._token):
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            await _unauthorized(send, presented=header is not None)


def guard(app: ASGIApp, host: str, token: SecretStr | None) -> ASGIApp:
    """``app`` ready to serve on ``host``: :func:`check_bind`, then the middleware if a token."""
    check_bind(host, token)
    if token is None or not token.get_secret_value():  # an empty variable means unset
        return app
    return BearerTokenMiddleware(app, token)


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
