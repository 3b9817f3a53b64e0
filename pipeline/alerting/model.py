"""An alert as the evaluator hands it on: one episode of a sentiment shift, firing or resolved.

:class:`AlertEvent` is what the evaluator produces and what :mod:`pipeline.alerting.notify`
turns into webhook payloads.  Times are timezone-aware and normalised to UTC; a firing
alert has no end, a resolved one must have one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, model_validator

from pipeline.schema import Kind

AlertStatus = Literal["firing", "resolved"]
Severity = Literal["warning", "critical"]
#: What a scope is (see ``docs/decisions/0004-alerting-design.md``, "Aggregates").
ScopeKind = Literal["overall", "channel", "intent", "ticker", "news_source"]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


UTCTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Evidence(BaseModel):
    """One of the window's most negative messages, with its attention words."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text_excerpt: str
    #: The model's probability of ``negative`` for this message (higher: more negative).
    sentiment_score: float
    top_words: list[str]


class RisingWord(BaseModel):
    """A word whose share of the attention mass rose from the baseline to the episode.

    ``z`` is its log-odds z-score with an informative Dirichlet prior
    (:mod:`pipeline.alerting.rising_words`); alerts stored before it was kept have none.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    word: str
    baseline: float
    current: float
    z: float | None = None


class Firing(BaseModel):
    """The numbers an episode fired on, kept on its resolve event beside how it ended."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: UTCTime
    baseline_share: float
    current_share: float
    baseline_n: int
    current_n: int
    statistic: float


class RelatedScope(BaseModel):
    """Another scope that shifted in the same episode, explained by the alert's own scope.

    It joined because, without the alert scope's messages, its own shift is gone (see
    ``Evaluator``): one outage on the app channel also moves ``overall`` and the
    ``card_declined`` intent, and that is one episode, not three alerts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope_kind: ScopeKind
    scope: str
    baseline_share: float
    current_share: float
    statistic: float


class AlertEvent(BaseModel):
    """One alert episode's state change: it started firing, or it resolved.

    ``alert_id`` names the episode (scope and episode start), so the firing and the
    resolved event of one episode share it; notifications are keyed by
    ``(alert_id, status, receiver)``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    alert_id: str
    status: AlertStatus
    scope_kind: ScopeKind
    scope: str
    stream: Kind
    severity: Severity
    starts_at: UTCTime
    ends_at: UTCTime | None = None
    summary: str
    baseline_share: float
    current_share: float
    baseline_n: int
    current_n: int
    statistic: float
    detector: str
    evidence: list[Evidence] = []
    rising_words: list[RisingWord] = []
    related: list[RelatedScope] = []
    #: On a resolve event: what the episode fired on (the fields above say how it ended).
    fired: Firing | None = None
    generator_url: str | None = None
    #: When (processing time) the evaluator found this change; ``starts_at`` and
    #: ``ends_at`` are event times (the buckets at which the episode opened and resolved).
    detected_at: UTCTime | None = None
    #: Seconds from the end of the bucket that decided it (event time) to ``detected_at``.
    detection_delay_s: float | None = None
    #: Found while catching up (a backlog, a backfill, a replay): the delay was over
    #: ``alert_late_after_s``.  Notifications say so.
    late: bool = False

    @model_validator(mode="after")
    def _end_matches_status(self) -> AlertEvent:
        if self.status == "resolved" and self.ends_at is None:
            msg = "a resolved alert needs ends_at"
            raise ValueError(msg)
        if self.status == "firing" and self.ends_at is not None:
            msg = "a firing alert has no ends_at"
            raise ValueError(msg)
        if self.ends_at is not None and self.ends_at < self.starts_at:
            msg = "ends_at is before starts_at"
            raise ValueError(msg)
        return self
