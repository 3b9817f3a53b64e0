"""What the run loop redacts, and when: events before classification, dead letters' bytes.

:class:`PrivacyPolicy` is the one place the run loop asks.  By default every decoded event is
redacted before the classifier sees it, so everything downstream (the enriched event, its
attention words, the news evidence sentence and its words, alerts built from the store, logs)
only ever holds redacted text.  With ``classify_redacted=False`` the classifier reads the raw
text (in memory only) and :meth:`PrivacyPolicy.redact_output` rewrites the enriched event:
redacted text, and attention moved onto the redacted words (the weights of a card number's
four words become the one ``[CARD]`` word's weight; the evidence sentence's own words
likewise), so what is stored and produced is the same either way.
Dead letters hold the input's bytes: by default a redacted copy (:meth:`redact_bytes`).
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from models.words import word_spans
from pipeline.privacy.redact import Finding, Redactor
from pipeline.schema import ChatEvent, EnrichedEvent, InputEvent, TaskResult, WordWeight


@dataclass
class PrivacyPolicy:
    """Redaction settings of the run loop; ``redactor=None`` turns redaction off."""

    redactor: Redactor | None = field(default_factory=Redactor)
    classify_redacted: bool = True
    deadletter_raw: bool = False

    def redact_event(self, event: InputEvent) -> tuple[InputEvent, Counter[str]]:
        """``event`` with its text fields redacted, and the counts per kind."""
        if self.redactor is None:
            return event, Counter()
        if isinstance(event, ChatEvent):
            done = self.redactor.redact(event.text)
            if not done.changed:
                return event, Counter()
            return event.model_copy(update={"text": done.text}), done.counts
        headline = self.redactor.redact(event.headline)
        body = self.redactor.redact(event.body) if event.body else None
        counts = headline.counts + (body.counts if body else Counter())
        if not counts:
            return event, counts
        update: dict[str, Any] = {"headline": headline.text}
        if body is not None:
            update["body"] = body.text
        return event.model_copy(update=update), counts

    def redact_output(self, out: EnrichedEvent, raw: InputEvent) -> EnrichedEvent:
        """The enriched event of a raw-classified ``raw`` with its text and words redacted.

        Only needed with ``classify_redacted=False``; otherwise the classifier already read
        redacted text and ``out`` is returned as it is.
        """
        if self.redactor is None or self.classify_redacted:
            return out
        text = raw.text
        findings = self.redactor.find(text)
        if not findings:
            return out
        redacted = _apply(text, findings)
        update: dict[str, Any] = {"text": redacted}
        for task in ("intent", "sentiment"):
            result: TaskResult | None = getattr(out, task)
            if result is None:
                continue
            changes: dict[str, Any] = {
                "attention": move_attention(text, findings, redacted, result.attention)
            }
            if result.evidence is not None:
                changes.update(self._redact_evidence(result.evidence, result.evidence_attention))
            update[task] = result.model_copy(update=changes)
        return out.model_copy(update=update)

    def _redact_evidence(self, sentence: str, words: list[WordWeight] | None) -> dict[str, Any]:
        """The evidence sentence redacted, and its own words moved onto the redacted words."""
        assert self.redactor is not None  # noqa: S101 - callers check
        findings = self.redactor.find(sentence)
        redacted = _apply(sentence, findings)
        changes: dict[str, Any] = {"evidence": redacted}
        if words is not None:
            changes["evidence_attention"] = move_attention(sentence, findings, redacted, words)
        return changes

    def redact_bytes(self, raw: bytes | None) -> bytes | None:
        r"""A dead letter's value as kept: the raw bytes only by opt-in, else a redacted copy.

        JSON values keep their shape with every string redacted (an identifier written with
        ``\u`` escapes is caught too); anything else is redacted as text, invalid UTF-8
        replaced by U+FFFD.
        """
        if raw is None or self.deadletter_raw or self.redactor is None:
            return raw
        text = raw.decode("utf-8", errors="replace")
        try:
            value = json.loads(text)
            redacted = self._redact_json(value)
        except (ValueError, RecursionError):
            as_text = self.redactor.redact(text)
            # Unchanged bytes stay byte for byte what arrived (a replay re-sends them).
            return as_text.text.encode() if as_text.changed else raw
        if redacted == value:
            return raw
        return json.dumps(redacted, ensure_ascii=False).encode()

    def _redact_json(self, value: Any) -> Any:
        assert self.redactor is not None  # noqa: S101 - callers check
        if isinstance(value, str):
            return self.redactor.redact(value).text
        if isinstance(value, list):
            return [self._redact_json(v) for v in value]
        if isinstance(value, dict):
            return {k: self._redact_json(v) for k, v in value.items()}
        if isinstance(value, int | float) and not isinstance(value, bool):
            # A number can be an identifier too (a card number sent as a JSON number).
            redacted = self.redactor.redact(str(value)).text
            return value if redacted == str(value) else redacted
        return value


def _apply(text: str, findings: list[Finding]) -> str:
    parts: list[str] = []
    last = 0
    for f in findings:
        parts += [text[last : f.start], f"[{f.kind}]"]
        last = f.end
    return "".join([*parts, text[last:]])


def move_attention(
    text: str, findings: list[Finding], redacted: str, words: list[WordWeight]
) -> list[WordWeight]:
    """Attention over ``text``'s words moved onto ``redacted``'s display words.

    Each raw word lands on the redacted word that holds its first character (a word inside
    an identifier lands on the placeholder, one word); weights that land together add up,
    so the total is unchanged.  The words returned carry their offsets in ``redacted``.
    ``words`` come in text order, as the classifier gives them; one without offsets (or
    whose offsets do not hold it) is found by searching on from the previous word.
    """
    new_spans = word_spans(redacted)
    new_starts = [s for s, _ in new_spans]
    totals: dict[int, float] = {}
    cursor = 0
    for word in words:
        start = _raw_start(text, word, cursor)
        position = _map_position(start, findings)
        index = max(0, bisect.bisect_right(new_starts, position) - 1)
        totals[index] = totals.get(index, 0.0) + word.weight
        cursor = start + len(word.word)
    return [
        WordWeight(
            word=redacted[new_spans[i][0] : new_spans[i][1]],
            weight=totals[i],
            start=new_spans[i][0],
            end=new_spans[i][1],
        )
        for i in sorted(totals)
    ]


def _raw_start(text: str, word: WordWeight, cursor: int) -> int:
    """Where ``word`` starts in ``text``: its offset, else its next occurrence."""
    if word.start is not None and text[word.start : word.end] == word.word:
        return word.start
    found = text.find(word.word, cursor) if word.word else -1
    if found < 0:
        msg = f"attention word {word.word!r} is not a word of the text in order"
        raise ValueError(msg)
    return found


def _map_position(position: int, findings: list[Finding]) -> int:
    """Where raw character ``position`` is in the redacted text."""
    shift = 0
    for f in findings:
        if position < f.start:
            break
        if position < f.end:
            return f.start + shift
        shift += len(f"[{f.kind}]") - (f.end - f.start)
    return position + shift
