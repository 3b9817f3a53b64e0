"""Webhook bodies for an alert: Alertmanager's webhook (version 4) and a Slack incoming webhook.

:func:`alertmanager_payload` renders an :class:`~pipeline.alerting.model.AlertEvent` in the
shape Alertmanager itself POSTs to a ``webhook_config`` receiver, so any tool that accepts
Alertmanager webhooks (PagerDuty's and Opsgenie's Prometheus integrations, Alerta, Karma,
a team's own handler) accepts attnwatch alerts unchanged.  :func:`slack_payload` renders
it as a Slack Block Kit message.

Message excerpts (customer text) are never put in a payload: receivers sit outside the
store's access control.  The evidence goes out as its attention words only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from pipeline.alerting.model import AlertEvent, AlertStatus, UTCTime

#: ``alertname`` of every attnwatch alert.
ALERT_NAME = "AttnwatchSentimentShift"
#: Labels a notification is grouped by: one group per scope, as Alertmanager's ``group_by``.
GROUP_BY = ("alertname", "stream", "scope_kind", "scope")
#: Go's zero ``time.Time``: Alertmanager's ``endsAt`` of an alert that has not ended.
ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
#: Most evidence words listed in a notification.
MAX_EVIDENCE_WORDS = 10
#: Most rising words listed in a notification.
MAX_RISING_WORDS = 5

# Prometheus label names (https://prometheus.io/docs/concepts/data_model/).
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")]

# FNV-1a, 64 bit: the hash of Prometheus' ``model.LabelSet.Fingerprint``.  Neither the
# standard library nor an installed package has FNV, and it is a few lines.
_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_SEPARATOR = b"\xff"


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set: 16 lower-case hex digits.

    As ``prometheus/common``'s ``labelSetToFingerprint``: FNV-1a 64 over the label names
    in sorted order, each followed by a ``0xff`` byte, its value and another ``0xff``.
    The same labels always give the same fingerprint, in any order.
    """
    digest = _FNV64_OFFSET
    for name in sorted(labels):
        for byte in name.encode() + _SEPARATOR + labels[name].encode() + _SEPARATOR:
            digest = ((digest ^ byte) * _FNV64_PRIME) & 0xFFFF_FFFF_FFFF_FFFF
    return f"{digest:016x}"


class AlertmanagerAlert(BaseModel):
    """One alert of an Alertmanager webhook notification (field names as on the wire)."""

    model_config = ConfigDict(frozen=True)

    status: AlertStatus
    labels: dict[LabelName, str]
    annotations: dict[LabelName, str]
    startsAt: UTCTime
    #: :data:`ZERO_TIME` while the alert fires.
    endsAt: UTCTime
    generatorURL: str
    fingerprint: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]


class AlertmanagerWebhook(BaseModel):
    """The body Alertmanager POSTs to a ``webhook_config`` URL (payload version 4).

    Field names are Alertmanager's own, so ``model_dump()`` is the wire format.
    """

    model_config = ConfigDict(frozen=True)

    version: Literal["4"]
    groupKey: str
    truncatedAlerts: int = Field(ge=0)
    status: AlertStatus
    receiver: str
    groupLabels: dict[LabelName, str]
    commonLabels: dict[LabelName, str]
    commonAnnotations: dict[LabelName, str]
    externalURL: str
    alerts: list[AlertmanagerAlert]


def alert_labels(event: AlertEvent) -> dict[str, str]:
    """The label set that identifies the alert (and so its fingerprint).

    ``alert_id`` makes each episode its own alert; the firing and the resolved
    notification of one episode carry the same labels.
    """
    return {
        "alertname": ALERT_NAME,
        "alert_id": event.alert_id,
        "severity": event.severity,
        "stream": event.stream,
        "scope_kind": event.scope_kind,
        "scope": event.scope,
    }


def alert_annotations(event: AlertEvent) -> dict[str, str]:
    """What a person reads: summary, description, the numbers and the words behind them."""
    annotations = {
        "summary": event.summary,
        "description": _description(event),
        "detector": event.detector,
        "baseline_share": f"{event.baseline_share:.4f}",
        "current_share": f"{event.current_share:.4f}",
        "baseline_n": str(event.baseline_n),
        "current_n": str(event.current_n),
        "statistic": f"{event.statistic:.4f}",
    }
    words = evidence_words(event)
    if words:
        annotations["evidence_words"] = ", ".join(words)
    rising = _rising(event)
    if rising:
        annotations["rising_words"] = ", ".join(rising)
    if event.related:
        annotations["related_scopes"] = ", ".join(
            f"{r.scope_kind} {r.scope!r} ({r.baseline_share:.0%} → {r.current_share:.0%})"
            if r.scope_kind != "overall"
            else f"overall ({r.baseline_share:.0%} → {r.current_share:.0%})"
            for r in event.related
        )
    if event.detected_at is not None:
        # Event time vs when it was found: an alert from a backlog says it is late.
        annotations["detected_at"] = event.detected_at.isoformat()
        annotations["late"] = "true" if event.late else "false"
        if event.detection_delay_s is not None:
            annotations["detection_delay_s"] = f"{event.detection_delay_s:.0f}"
    return annotations


def alertmanager_payload(
    event: AlertEvent, receiver: str, external_url: str
) -> AlertmanagerWebhook:
    """The Alertmanager webhook body for one alert, as sent to ``receiver``.

    ``external_url`` is where people can see the alert (attnwatch's dashboard); it is
    the payload's ``externalURL``.  A firing alert's ``endsAt`` is :data:`ZERO_TIME`,
    as Alertmanager sends it; a resolved one carries the episode's end.
    """
    labels = alert_labels(event)
    annotations = alert_annotations(event)
    group_labels = {name: labels[name] for name in GROUP_BY}
    alert = AlertmanagerAlert(
        status=event.status,
        labels=labels,
        annotations=annotations,
        startsAt=event.starts_at,
        endsAt=event.ends_at or ZERO_TIME,
        generatorURL=event.generator_url or "",
        fingerprint=fingerprint(labels),
    )
    return AlertmanagerWebhook(
        version="4",
        groupKey=f"{{}}:{_label_string(group_labels)}",
        truncatedAlerts=0,
        status=event.status,
        receiver=receiver,
        groupLabels=group_labels,
        commonLabels=labels,
        commonAnnotations=annotations,
        externalURL=external_url,
        alerts=[alert],
    )


# Slack Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
_SLACK_HEADER_CHARS = 150
_SLACK_SECTION_CHARS = 3000
_SLACK_FIELD_CHARS = 2000


class SlackText(BaseModel):
    """A Block Kit text object."""

    model_config = ConfigDict(frozen=True)

    type: Literal["plain_text", "mrkdwn"]
    text: str


class SlackHeader(BaseModel):
    """A header block: one line of plain text."""

    model_config = ConfigDict(frozen=True)

    type: Literal["header"] = "header"
    text: SlackText


class SlackSection(BaseModel):
    """A section block: a text and up to ten short fields shown in two columns."""

    model_config = ConfigDict(frozen=True)

    type: Literal["section"] = "section"
    text: SlackText
    fields: list[SlackText] = Field(default=[], max_length=10)


class SlackContext(BaseModel):
    """A context block: small print under the message."""

    model_config = ConfigDict(frozen=True)

    type: Literal["context"] = "context"
    elements: list[SlackText] = Field(min_length=1, max_length=10)


SlackBlock = Annotated[SlackHeader | SlackSection | SlackContext, Field(discriminator="type")]


class SlackMessage(BaseModel):
    """A Slack incoming-webhook body: fallback ``text`` (notifications) and ``blocks``."""

    model_config = ConfigDict(frozen=True)

    text: str
    blocks: list[SlackBlock]


def slack_payload(event: AlertEvent) -> SlackMessage:
    """The Slack message for one alert: summary, shares, counts and top evidence words."""
    mark = ":red_circle:" if event.status == "firing" else ":large_green_circle:"
    title = f"[{event.status.upper()}] {event.severity}: {event.summary}"
    fields = [
        _mrkdwn(f"*Scope*\n{event.stream} {event.scope_kind} `{_escape(event.scope)}`"),
        _mrkdwn(f"*Detector*\n{_escape(event.detector)} (statistic {event.statistic:.2f})"),
        _mrkdwn(f"*Negative share now*\n{event.current_share:.1%} of {event.current_n}"),
        _mrkdwn(f"*Baseline*\n{event.baseline_share:.1%} of {event.baseline_n}"),
        _mrkdwn(f"*Started*\n{event.starts_at:%Y-%m-%d %H:%M:%S} UTC"),
    ]
    if event.ends_at is not None:
        fields.append(_mrkdwn(f"*Resolved*\n{event.ends_at:%Y-%m-%d %H:%M:%S} UTC"))
    words = evidence_words(event)
    if words:
        fields.append(_mrkdwn("*Evidence words*\n" + ", ".join(_escape(w) for w in words)))
    rising = _rising(event)
    if rising:
        fields.append(_mrkdwn("*Rising words*\n" + ", ".join(_escape(w) for w in rising)))
    blocks: list[SlackBlock] = [
        SlackHeader(text=SlackText(type="plain_text", text=_cut(title, _SLACK_HEADER_CHARS))),
        SlackSection(
            text=_mrkdwn(f"{mark} {_escape(_description(event))}", _SLACK_SECTION_CHARS),
            fields=fields,
        ),
    ]
    context = f"alert `{_escape(event.alert_id)}`"
    if event.generator_url:
        context += f" · <{event.generator_url}|details>"
    blocks.append(SlackContext(elements=[_mrkdwn(context)]))
    return SlackMessage(text=_cut(f"{mark} {_escape(title)}", _SLACK_SECTION_CHARS), blocks=blocks)


def evidence_words(event: AlertEvent) -> list[str]:
    """The evidence messages' attention words, most negative message first, without repeats."""
    seen: dict[str, None] = {}
    for item in sorted(event.evidence, key=lambda e: -e.sentiment_score):
        for word in item.top_words:
            seen.setdefault(word, None)
    return list(seen)[:MAX_EVIDENCE_WORDS]


def _rising(event: AlertEvent) -> list[str]:
    # Ranked by log-odds z (``rising_words``); alerts stored before it by the share gain.
    rising = sorted(
        event.rising_words,
        key=lambda r: (r.z if r.z is not None else 0.0, r.current - r.baseline),
        reverse=True,
    )
    return [f"{r.word} ({r.baseline:.1%} → {r.current:.1%})" for r in rising[:MAX_RISING_WORDS]]


def _description(event: AlertEvent) -> str:
    where = f"{event.stream} {event.scope_kind} {event.scope!r}"
    fired = event.fired
    if event.status == "resolved" and fired is not None:
        return (
            f"resolved: negative share of {where} fired at {fired.current_share:.1%} over "
            f"{fired.current_n} messages against {fired.baseline_share:.1%} over "
            f"{fired.baseline_n} (statistic {fired.statistic:.2f}); it ended at "
            f"{event.current_share:.1%} over {event.current_n} against "
            f"{event.baseline_share:.1%} over {event.baseline_n} ({event.detector})"
        )
    state = "resolved" if event.status == "resolved" else "firing"
    return (
        f"{state}: negative share of {where} "
        f"is {event.current_share:.1%} over {event.current_n} messages against "
        f"{event.baseline_share:.1%} over {event.baseline_n} in the baseline "
        f"({event.detector}, statistic {event.statistic:.2f})"
    )


def _label_string(labels: Mapping[str, str]) -> str:
    """``{a="x", b="y"}``, sorted, as Go's ``LabelSet.String`` writes group keys."""
    pairs: Iterable[str] = (
        f"{name}={json.dumps(labels[name], ensure_ascii=False)}" for name in sorted(labels)
    )
    return "{" + ", ".join(pairs) + "}"


def _escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str, limit: int = _SLACK_FIELD_CHARS) -> SlackText:
    return SlackText(type="mrkdwn", text=_cut(text, limit))
