"""What the run loop reports for readiness when the group hands it partitions, or none."""

from models.classifier import AttentionTextClassifier
from pipeline.health import Health
from pipeline.metrics import Metrics
from pipeline.stream.runner import IDLE_DETAIL, Collaborators, Runner


class GroupSource:
    """A source whose assignment the test sets, calling the runner's rebalance callbacks."""

    def __init__(self):
        self.owned = set()
        self.callbacks = None

    def on_rebalance(self, revoked, assigned):
        self.callbacks = (revoked, assigned)

    def rebalance(self, owned):
        revoked, assigned = self.callbacks
        revoked(self.owned)
        self.owned = set(owned)
        assigned(self.owned)

    def assignment(self):
        return self.owned

    def commit(self, offsets):
        return True

    def poll(self, timeout_s, max_records):
        return []

    def lag(self):
        return {}

    def pause(self):
        pass

    def resume(self):
        pass

    def close(self):
        pass


def test_an_idle_member_is_ready_and_says_why(tiny_model):
    metrics = Metrics()
    health = Health(metrics=metrics)
    source = GroupSource()
    Runner(
        source=source,
        classifier=AttentionTextClassifier(tiny_model, "cpu"),
        sinks=[],
        topic_kinds={"chat": "chat", "news": "news"},
        metrics=metrics,
        collaborators=Collaborators(health=health),
    )
    for component in ("broker", "store"):
        health.set(component, True)
    assert health.snapshot()["components"]["assignment"]["ok"] is False  # not joined yet

    source.rebalance({("chat", 0), ("news", 0)})
    state = health.snapshot()["components"]["assignment"]
    assert state["ok"] is True and state["detail"] == "2 partitions"

    source.rebalance(set())  # a seventh member on six partitions
    state = health.snapshot()["components"]["assignment"]
    assert state["ok"] is True and state["detail"] == IDLE_DETAIL
    assert health.ready()
