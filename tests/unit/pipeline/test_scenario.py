import json

from pipeline.demo.scenario import ScenarioOptions, scenario
from pipeline.schema import ChatEvent, DecodeError, NewsEvent, decode


def kinds(items):
    out = []
    for item in items:
        kind = "chat" if item.topic == "chat" else "news"
        out.append((item, decode(kind, item.value())))
    return out


def test_stream_has_conversations_news_and_some_bad_events():
    items = kinds(scenario("chat", "news", ScenarioOptions(count=600, bad_rate=0.02)))
    assert len(items) == 600
    chats = [e for _, e in items if isinstance(e, ChatEvent)]
    news = [e for _, e in items if isinstance(e, NewsEvent)]
    bad = [e for _, e in items if isinstance(e, DecodeError)]
    assert 0 < len(bad) < 40
    assert 0.15 < len(news) / 600 < 0.35
    assert {c.role for c in chats} == {"customer", "agent"}
    conversations = {}
    for item, event in items:
        if isinstance(event, ChatEvent):
            assert item.key == event.conversation_id  # one conversation, one partition
            conversations.setdefault(event.conversation_id, set()).add(event.channel)
    assert all(len(channels) == 1 for channels in conversations.values())


def test_shift_injects_negative_card_declined_chats_on_one_channel():
    def app_share(options):
        items = list(scenario("chat", "news", options))
        window = items[int(0.4 * len(items)) : int(0.6 * len(items))]
        customer = [json.loads(i.value()) for i in window if i.topic == "chat"]
        customer = [c for c in customer if c.get("role") == "customer"]
        return sum(c["channel"] == "app" for c in customer) / len(customer)

    shifted = app_share(ScenarioOptions(count=1500, shift=(0.4, 0.6), bad_rate=0))
    calm = app_share(ScenarioOptions(count=1500, shift=None, bad_rate=0))
    assert shifted > calm + 0.3


def test_each_run_gets_fresh_ids_for_the_same_stream():
    def run(**extra):
        options = ScenarioOptions(count=300, bad_rate=0, **extra)
        return [json.loads(i.value()) for i in scenario("chat", "news", options)]

    first, second = run(), run()
    ids = [{e.get("message_id") or e.get("article_id") for e in r} for r in (first, second)]
    assert len(ids[0]) == 300 and not ids[0] & ids[1]  # nothing a store would dedupe
    assert [e.get("text") for e in first] == [e.get("text") for e in second]  # same stream
    seeded = [[{k: v for k, v in e.items() if k != "ts"} for e in run(ids_seed=7)] for _ in "ab"]
    assert seeded[0] == seeded[1]  # reproducible on request (event times are the clock's)


def test_a_simulated_day_spreads_event_time_by_position():
    from datetime import UTC, datetime, timedelta

    from pipeline.demo.day import SimulatedDay

    end = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    day = SimulatedDay.ending(end)
    options = ScenarioOptions(count=400, bad_rate=0, shift=(0.4, 0.65))
    events = [json.loads(i.value()) for i in scenario("chat", "news", options, day=day)]
    times = [datetime.fromisoformat(e["ts"]) for e in events]
    assert times == sorted(times)
    assert times[0] == end - timedelta(days=1)
    assert end - timedelta(minutes=5) < times[-1] < end
    # The shift sits at the same fractions of the day: 09:36 to 15:36 of it.
    def app_share(inside: bool) -> float:
        turns = [e for t, e in zip(times, events)
                 if e.get("role") == "customer" and (day.at(0.4) <= t < day.at(0.65)) == inside]
        return sum(e["channel"] == "app" for e in turns) / len(turns)  # fmt: skip

    assert app_share(inside=True) > app_share(inside=False) + 0.3
    assert day.speed(120.0) == 720.0
