"""Posted forms: reading one safely, refusing cross-site posts, and safe redirect targets.

The relabel form is the app's only write.  Its body is read with a size cap (a huge body is
refused before it is all in memory), as URL-encoded UTF-8 or a JSON object; a browser's
post from another site is refused (the ``Origin`` and ``Sec-Fetch-Site`` headers), since
on loopback without a token any page the analyst visits could otherwise post to it; and
the page to go back to must be on this site.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from starlette.exceptions import HTTPException

from dashboards.data.filters import BadParameter

#: Largest form a correction may post, in bytes.
MAX_FORM_BYTES = 10_000


def local_path(target: str | None) -> str | None:
    """``target`` if it is a path on this site (no scheme, host or ``//``), else ``None``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc and "\\" not in target else None


def same_origin(request: Request) -> None:
    """Refuse a browser's cross-site POST: a page elsewhere must not relabel events."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if site == "cross-site" or (
        origin is not None and urlsplit(origin).netloc != request.headers.get("host")
    ):
        raise HTTPException(403, "cross-site form posts are refused")


async def read_capped(request: Request, limit: int, too_large: str) -> bytes:
    """The request body; ``413`` (``too_large``) as soon as it is known to exceed ``limit``.

    Refused from ``Content-Length`` before reading, or once that much has arrived: a huge
    body never sits in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, too_large)
    return bytes(body)


async def read_form(request: Request) -> dict[str, str]:
    """A URL-encoded (or JSON) form body as a dict of strings."""
    body = await read_capped(request, MAX_FORM_BYTES, f"form larger than {MAX_FORM_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    msg = "the form is not URL-encoded UTF-8 or a JSON object"
    try:
        if kind == "application/json":
            parsed: Any = json.loads(body)
        else:
            parsed = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        raise BadParameter(msg) from None
    if not isinstance(parsed, dict):
        raise BadParameter(msg)
    return {str(k): str(v) for k, v in parsed.items()}
