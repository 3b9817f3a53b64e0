"""The demo's event stream, built from the project's seed data.

Chats arrive as conversations (customer and agent turns on one channel),
interleaved with a news feed.  Optionally, a *sentiment shift* is injected
(a burst of negative card-declined chats on the app channel) so the monitor
has something worth alerting on, and a small share of malformed events
exercises the dead-letter path.

The texts and their order follow ``seed``; the message, article and conversation ids
are fresh on every run unless ``ids_seed`` is given: the store deduplicates on ids, so
a second run with the first run's ids would be skipped as duplicates, all of it.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from consumers.replay import ReplayItem
from models.data import seed
from pipeline.demo.day import SimulatedDay

CHANNELS = ("web", "app", "whatsapp")
SOURCES = ("Harbor Wire", "Ledger Daily", "Meridian Markets")


@dataclass(frozen=True)
class ScenarioOptions:
    """Shape of the replayed stream."""

    count: int = 2000
    news_share: float = 0.25
    #: Fraction of the stream (start, end) during which the shift is injected.
    shift: tuple[float, float] | None = (0.5, 0.7)
    shift_intent: str = "card_declined"
    shift_channel: str = "app"
    shift_strength: float = 0.7
    bad_rate: float = 0.01
    seed: int = 0
    #: Seed of the ids; ``None``: fresh ids on every run (see the module docstring).
    ids_seed: int | None = None

    def __post_init__(self) -> None:
        if self.count < 0:
            msg = f"count must be >= 0, got {self.count}"
            raise ValueError(msg)
        if not 0 <= self.news_share <= 1 or not 0 <= self.bad_rate <= 1:
            msg = "news_share and bad_rate must lie in [0, 1]"
            raise ValueError(msg)
        if self.shift is not None and not 0 <= self.shift[0] < self.shift[1] <= 1:
            msg = f"shift must be (start, end) with 0 <= start < end <= 1, got {self.shift}"
            raise ValueError(msg)


def _now() -> datetime:
    return datetime.now(UTC)


def scenario(
    topic_chat: str,
    topic_news: str,
    options: ScenarioOptions,
    clock: Callable[[], datetime] = _now,
    day: SimulatedDay | None = None,
) -> Iterator[ReplayItem]:
    """Yield ``options.count`` replay items.

    Event times are taken from ``clock`` when each item is yielded or, given a ``day``,
    spread over it by position in the stream (item *k* of *n* at ``day.at(k / n)``).
    """
    rng = random.Random(options.seed)  # noqa: S311 - demo data, not security
    fresh = uuid.uuid4().int if options.ids_seed is None else options.ids_seed
    ids = random.Random(fresh)  # noqa: S311 - unique, not secret

    def when() -> datetime:
        return day.at(produced / max(1, options.count)) if day is not None else clock()

    chats = seed.load_chat()
    news = seed.load_news()
    replies: dict[str, list[str]] = {}
    for reply in seed.load_agent_replies():
        replies.setdefault(reply.intent, []).append(reply.text)
    by_intent: dict[str, list[seed.ChatExample]] = {}
    for chat in chats:
        by_intent.setdefault(chat.intent, []).append(chat)
    shifted = [
        c for c in by_intent.get(options.shift_intent, []) if c.sentiment == "negative"
    ] or chats

    turns: list[tuple[str, str, str, str]] = []  # conversation, channel, role, text
    produced = 0
    while produced < options.count:
        position = produced / max(1, options.count)
        in_shift = options.shift is not None and options.shift[0] <= position < options.shift[1]
        if rng.random() < options.bad_rate:
            yield _bad_item(rng, ids, topic_chat, topic_news, when())
            produced += 1
            continue
        if rng.random() < options.news_share:
            article = rng.choice(news)
            article_id = uuid.UUID(int=ids.getrandbits(128)).hex
            payload: dict[str, object] = {
                "schema_version": 1,
                "article_id": article_id,
                "source": rng.choice(SOURCES),
                "headline": article.headline,
                "body": article.body,
                "tickers": list(article.tickers),
                "ts": when().isoformat(),
            }
            yield ReplayItem(topic_news, article_id, payload)
            produced += 1
            continue
        if not turns:
            turns = _conversation(rng, ids, by_intent, replies, shifted, in_shift, options)
        conversation, channel, role, text = turns.pop(0)
        payload = {
            "schema_version": 1,
            "message_id": uuid.UUID(int=ids.getrandbits(128)).hex,
            "conversation_id": conversation,
            "channel": channel,
            "role": role,
            "text": text,
            "ts": when().isoformat(),
        }
        # Keyed by conversation so one conversation stays ordered on one partition.
        yield ReplayItem(topic_chat, conversation, payload)
        produced += 1


def _conversation(
    rng: random.Random,
    ids: random.Random,
    by_intent: dict[str, list[seed.ChatExample]],
    replies: dict[str, list[str]],
    shifted: list[seed.ChatExample],
    in_shift: bool,
    options: ScenarioOptions,
) -> list[tuple[str, str, str, str]]:
    conversation = uuid.UUID(int=ids.getrandbits(128)).hex[:16]
    angry = in_shift and rng.random() < options.shift_strength
    if angry:
        channel = options.shift_channel
        opener = rng.choice(shifted)
    else:
        channel = rng.choice(CHANNELS)
        opener = rng.choice(by_intent[rng.choice(sorted(by_intent))])
    turns = [(conversation, channel, "customer", opener.text)]
    agent = replies.get(opener.intent) or ["Thanks for reaching out, let me look into this."]
    turns.append((conversation, channel, "agent", rng.choice(agent)))
    if rng.random() < 0.5:
        # A customer caught in the outage stays angry.
        follow = rng.choice(shifted if angry else by_intent[opener.intent])
        turns.append((conversation, channel, "customer", follow.text))
    return turns


def _bad_item(
    rng: random.Random, ids: random.Random, topic_chat: str, topic_news: str, now: datetime
) -> ReplayItem:
    """One malformed event of a random kind, as a broken producer would send it."""
    key = uuid.UUID(int=ids.getrandbits(128)).hex[:16]
    good = {
        "message_id": key,
        "conversation_id": key,
        "channel": "web",
        "role": "customer",
        "text": "my card keeps getting declined",
        "ts": now.isoformat(),
    }
    kind = rng.randrange(5)
    if kind == 0:
        return ReplayItem(topic_chat, key, raw=b'{"message_id": "' + key.encode() + b'", "text": ')
    if kind == 1:
        return ReplayItem(topic_chat, key, {k: v for k, v in good.items() if k != "text"})
    if kind == 2:
        return ReplayItem(topic_chat, key, {**good, "ts": now.replace(tzinfo=None).isoformat()})
    if kind == 3:
        return ReplayItem(topic_chat, key, raw=b"\xff\xfe" + json.dumps(good).encode())
    return ReplayItem(
        topic_news, key, {"article_id": key, "source": "x", "tickers": "NWB", "ts": now.isoformat()}
    )
