"""Decode speed: pydantic's one-pass ``model_validate_json`` against the old two-step decode.

    python bench/decode_speed.py [--seconds 1.0] [--repeats 5]

The old ``pipeline.schema.decode`` (kept here as the baseline) decoded the bytes,
ran ``json.loads``, checked for an object and the schema version in Python, then
called ``model_validate`` on the dict (here on today's models).  The new one
hands the raw bytes to ``model_validate_json``.  Both are timed on the same realistic events: a chat
turn, a news article with a body, a long article, a chat turn that breaks the
schema and one cut off mid-JSON.  Prints events/s of each (best of ``--repeats``) and the ratio
new/old, after checking that both give the same result on every event.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

from pydantic import ValidationError

from pipeline.schema import (
    INPUT_SCHEMA_VERSION,
    ChatEvent,
    DecodeError,
    InputEvent,
    Kind,
    NewsEvent,
    decode,
)


def old_decode(kind: Kind, raw: bytes | None) -> InputEvent | DecodeError:
    """The implementation ``decode`` replaced (details as they were)."""
    if raw is None:
        return DecodeError("empty_value", "message has no value (tombstone)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return DecodeError("invalid_utf8", str(exc))
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return DecodeError("invalid_json", str(exc))
    if not isinstance(payload, dict):
        return DecodeError("not_an_object", f"expected a JSON object, got {type(payload).__name__}")
    version = payload.get("schema_version", INPUT_SCHEMA_VERSION)
    if version != INPUT_SCHEMA_VERSION:
        return DecodeError(
            "unsupported_schema_version",
            f"schema_version {version!r}; this consumer reads {INPUT_SCHEMA_VERSION}",
        )
    model: type[ChatEvent] | type[NewsEvent] = ChatEvent if kind == "chat" else NewsEvent
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        parts = []
        for error in exc.errors(include_url=False, include_input=False):
            where = ".".join(str(p) for p in error["loc"]) or "event"
            parts.append(f"{where}: {error['msg']}")
        return DecodeError("schema_violation", "; ".join(parts))


CHAT = {
    "schema_version": 1,
    "message_id": "5f0c1e8a9b2d4c7e8f1a3b5c7d9e0f12",
    "conversation_id": "c-20261125-0042",
    "channel": "app",
    "role": "customer",
    "text": "Hi, my card was declined at the pharmacy this morning even though I have money "
    "in my account. Can you tell me why?",
    "ts": "2026-11-25T10:00:00.123456+00:00",
}
_PARAGRAPH = (
    "Northwind Bank said on Tuesday it would raise its quarterly dividend by 10% after "
    "third-quarter profit beat analysts' estimates, helped by higher net interest income "
    "and lower loan-loss provisions. Shares rose 3.2% in early trading in New York. "
)
NEWS = {
    "schema_version": 1,
    "article_id": "hw-2026-11-25-0187",
    "source": "Harbor Wire",
    "headline": "Northwind Bank raises dividend 10% as profit beats estimates",
    "body": "\n\n".join([_PARAGRAPH] * 8),  # ~2 KB, a short wire story
    "tickers": ["NWB", "BRK.B"],
    "ts": "2026-11-25T10:00:00Z",
}
EVENTS: dict[str, tuple[Kind, bytes]] = {
    "valid chat": ("chat", json.dumps(CHAT).encode()),
    "valid news with body": ("news", json.dumps(NEWS).encode()),
    # A long article near the size the body limit lets through: the character
    # checks are linear in it.
    "valid news, 135 KB body": (
        "news",
        json.dumps({**NEWS, "body": "\n\n".join([_PARAGRAPH] * 540)}).encode(),
    ),
    "bad chat (schema_violation)": (
        "chat",
        json.dumps({**CHAT, "role": "bot", "ts": "2026-11-25T10:00:00"}).encode(),
    ),
    "bad chat (invalid_json)": ("chat", json.dumps(CHAT).encode()[:-40]),
}


def rate(fn: Callable[[Kind, bytes], object], kind: Kind, raw: bytes, seconds: float) -> float:
    """Events per second of ``fn`` over roughly ``seconds``."""
    calls = 1
    while True:
        started = time.perf_counter()
        for _ in range(calls):
            fn(kind, raw)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return calls / elapsed
        calls *= 2


def outcome(result: InputEvent | DecodeError) -> object:
    """What must agree between the two: the event, or the dead-letter reason."""
    return result.reason if isinstance(result, DecodeError) else result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--repeats", type=int, default=5, help="measurements, best is kept")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"{'event':30} {'bytes':>6} {'old ev/s':>10} {'new ev/s':>10} {'new/old':>8}")
    for name, (kind, raw) in EVENTS.items():
        same = outcome(old_decode(kind, raw)) == outcome(decode(kind, raw))
        if not same:
            msg = f"{name}: old and new decode disagree"
            raise SystemExit(msg)
        old = max(rate(old_decode, kind, raw, args.seconds) for _ in range(args.repeats))
        new = max(rate(decode, kind, raw, args.seconds) for _ in range(args.repeats))
        print(f"{name:30} {len(raw):>6} {old:>10,.0f} {new:>10,.0f} {new / old:>7.2f}x")


if __name__ == "__main__":
    main()
