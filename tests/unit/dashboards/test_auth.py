"""The dashboard's guard: no token, no data, whenever it listens beyond loopback.

The middleware is driven as an ASGI server would drive it, with ``asyncio`` and plain
dicts, so no web framework or HTTP client is needed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from dashboards.web import auth
from dashboards.web.auth import (
    BearerTokenMiddleware,
    authorized,
    check_bind,
    guard,
    is_loopback,
)
from pipeline.errors import ConfigError

TOKEN = SecretStr("s3cret-token-0123456789abcdef")
#: What a browser sends with a sign-in form post.
FORM = (b"content-type", b"application/x-www-form-urlencoded")
#: Nothing binds here: it is the address whose bind the guard is asked about.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104


class Dashboard:
    """A stand-in for the web app: answers 200 and remembers what reached it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self.seen.append("lifespan")
            return
        self.seen.append(scope["path"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"customer messages"})


def call(app: Any, path: str = "/", authorization: str | None = None, kind: str = "http"):
    """Send one request through ``app``; return the messages it sent back."""
    headers = [(b"host", b"dashboard.example")]
    if authorization is not None:
        headers.append((b"authorization", authorization.encode("latin-1")))
    scope = {"type": kind, "path": path, "method": "GET", "headers": headers}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def status(sent: list[dict[str, Any]]) -> int:
    return int(sent[0]["status"])


def headers(sent: list[dict[str, Any]]) -> dict[bytes, bytes]:
    return dict(sent[0]["headers"])


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        (ALL_INTERFACES, False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("192.168.0.7", False),
        ("dashboard.internal", False),
        ("localhost.evil.example", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("host", [ALL_INTERFACES, "10.1.2.3", "::", "dashboard.internal"])
def test_a_non_loopback_bind_without_a_token_refuses_to_start(host):
    with pytest.raises(ConfigError, match="ATTNWATCH_DASHBOARD_TOKEN"):
        check_bind(host, None)
    with pytest.raises(ConfigError, match="not a loopback"):
        guard(Dashboard(), host, SecretStr(""))  # an empty variable is no token


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost"])
def test_a_loopback_bind_without_a_token_is_allowed(host):
    check_bind(host, None)
    app = Dashboard()
    assert guard(app, host, None) is app
    assert status(call(guard(app, host, None))) == 200


def test_a_short_token_is_refused():
    with pytest.raises(ConfigError, match="shorter than 16"):
        check_bind(ALL_INTERFACES, SecretStr("short"))


def test_non_loopback_dashboard_refuses_requests_without_the_right_token():
    app = Dashboard()
    guarded = guard(app, ALL_INTERFACES, TOKEN)
    for authorization in (None, "", "Bearer", "Bearer wrong-token", "Basic dXNlcjpwYXNz"):
        sent = call(guarded, "/events", authorization)
        assert status(sent) == 401, authorization
        assert headers(sent)[b"www-authenticate"].startswith(b"Bearer")
        assert b"customer messages" not in sent[-1]["body"]
    # A wrong token is told apart from a missing one (RFC 6750), the token never echoed.
    challenge = headers(call(guarded, "/", "Bearer nope"))[b"www-authenticate"]
    assert b'error="invalid_token"' in challenge and b"nope" not in challenge
    assert b"invalid_token" not in headers(call(guarded, "/"))[b"www-authenticate"]
    assert app.seen == []


def test_the_right_token_passes():
    app = Dashboard()
    guarded = guard(app, ALL_INTERFACES, TOKEN)
    for authorization in (
        f"Bearer {TOKEN.get_secret_value()}",
        f"bearer {TOKEN.get_secret_value()}",
        f"  Bearer   {TOKEN.get_secret_value()} ",
    ):
        sent = call(guarded, "/events", authorization)
        assert status(sent) == 200 and sent[-1]["body"] == b"customer messages"
    assert app.seen == ["/events"] * 3


def test_healthz_and_lifespan_need_no_token():
    app = Dashboard()
    guarded = guard(app, ALL_INTERFACES, TOKEN)
    assert status(call(guarded, "/healthz")) == 200
    call(guarded, "/", kind="lifespan")
    assert app.seen == ["/healthz", "lifespan"]
    # Only the exact path: a prefix is no way around the token.
    assert status(call(guarded, "/healthz/../events")) == 401


def test_a_websocket_without_the_token_is_closed():
    app = Dashboard()
    guarded = BearerTokenMiddleware(app, TOKEN)
    assert call(guarded, "/live", kind="websocket") == [{"type": "websocket.close", "code": 1008}]
    accepted = call(guarded, "/live", f"Bearer {TOKEN.get_secret_value()}", kind="websocket")
    assert accepted == [{"type": "websocket.accept"}]


def test_authorized_compares_in_constant_time(monkeypatch):
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    assert authorized(f"Bearer {TOKEN.get_secret_value()}", TOKEN)
    assert not authorized("Bearer x", TOKEN)
    assert len(calls) == 2


def test_nothing_is_authorized_without_a_configured_token():
    assert not authorized("Bearer anything", None)
    assert not authorized("Bearer ", SecretStr(""))
    assert not authorized(None, TOKEN)
    with pytest.raises(ValueError, match="non-empty"):
        BearerTokenMiddleware(Dashboard(), SecretStr(""))


def browser_call(app: Any, path: str, *, method: str = "GET", body: bytes = b"",
                 cookie: str | None = None) -> list[dict[str, Any]]:
    """A browser's request: it asks for HTML and sends cookies, never a bearer header."""
    headers = [(b"host", b"dashboard.example"), (b"accept", b"text/html,*/*")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode("latin-1")))
    if method == "POST":
        headers.append(FORM)
    scope = {"type": "http", "path": path, "method": method, "headers": headers,
             "scheme": "http"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_browser_signs_in_once_and_then_gets_pages_by_its_cookie() -> None:
    inner = Dashboard()
    app = BearerTokenMiddleware(inner, TOKEN)
    # Without a session a page load is sent to the sign-in form, not given a bare 401.
    first = browser_call(app, "/")
    assert status(first) == 303 and headers(first)[b"location"] == b"/login"
    form = browser_call(app, "/login")
    assert status(form) == 200 and b'<label for="token">' in form[1]["body"]
    # A wrong token: 401 and the form again, no cookie.
    wrong = browser_call(app, "/login", method="POST", body=b"token=nope")
    assert status(wrong) == 401 and b"set-cookie" not in headers(wrong)
    # The right one: a cookie that is not the token itself.
    secret = TOKEN.get_secret_value()
    ok = browser_call(app, "/login", method="POST", body=f"token={secret}".encode())
    assert status(ok) == 303
    cookie = headers(ok)[b"set-cookie"].decode()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and secret not in cookie
    session = cookie.split(";")[0]
    page = browser_call(app, "/alerts", cookie=session)
    assert status(page) == 200 and inner.seen == ["/alerts"]
    # A forged or stale cookie is worth nothing.
    forged = browser_call(app, "/alerts", cookie="attnwatch_session=" + "0" * 64)
    assert status(forged) == 303 and inner.seen == ["/alerts"]


def test_sign_in_attempts_are_rate_limited_per_client_address() -> None:
    app = BearerTokenMiddleware(Dashboard(), TOKEN, login_rate_limit="3/minute")
    secret = TOKEN.get_secret_value()

    def sign_in(token: str, client: str) -> list[dict[str, Any]]:
        scope = {"type": "http", "path": "/login", "method": "POST", "scheme": "http",
                 "headers": [(b"accept", b"text/html"), FORM], "client": (client, 50000)}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": f"token={token}".encode(), "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        asyncio.run(app(scope, receive, send))
        return sent

    assert [status(sign_in("guess", "203.0.113.9")) for _ in range(3)] == [401, 401, 401]
    # Past the limit even the right token is refused, with a time to come back.
    limited = sign_in(secret, "203.0.113.9")
    assert status(limited) == 429 and b"set-cookie" not in headers(limited)
    assert 1 <= int(headers(limited)[b"retry-after"]) <= 60
    # Another address has its own allowance; the form itself is never limited.
    assert status(sign_in(secret, "198.51.100.4")) == 303
    assert status(browser_call(app, "/login")) == 200


def post_login(app: Any, receive: Any, content_type: bytes, client: str) -> list[dict[str, Any]]:
    """A sign-in post whose body ``receive`` hands on; return what ``app`` sent back."""
    scope = {"type": "http", "path": "/login", "method": "POST", "scheme": "http",
             "headers": [(b"content-type", content_type)], "client": (client, 50000)}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_a_sign_in_body_is_read_only_up_to_its_bound() -> None:
    secret = TOKEN.get_secret_value()
    reads = 0

    async def endless() -> dict[str, Any]:
        # The right token, then padding that never ends: only the bound is read.
        nonlocal reads
        reads += 1
        chunk = f"token={secret}&pad=" if reads == 1 else "x" * 1024
        return {"type": "http.request", "body": chunk.encode(), "more_body": True}

    app = BearerTokenMiddleware(Dashboard(), TOKEN)
    sent = post_login(app, endless, FORM[1], "203.0.113.7")
    assert status(sent) == 303
    assert reads <= 2 + auth.LOGIN_MAX_BYTES // 1024


def test_a_sign_in_post_that_is_not_a_form_is_a_wrong_token() -> None:
    app = BearerTokenMiddleware(Dashboard(), TOKEN)
    secret = TOKEN.get_secret_value()
    put = browser_call(app, "/login", method="PUT", body=f"token={secret}".encode())
    assert status(put) == 405

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": f"token={secret}".encode(), "more_body": False}

    sent = post_login(app, receive, b"text/plain", "203.0.113.8")
    assert status(sent) == 401 and b"set-cookie" not in headers(sent)
