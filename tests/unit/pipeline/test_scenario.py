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
