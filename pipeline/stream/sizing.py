"""Make an enriched event fit in one Kafka record by trimming its attention lists.

A long article's attention has one entry per word, which can take an enriched
record past the producer's request size even though the input was accepted;
the topic flush would then fail after the store had committed.  Only attention
is trimmed (to each task's highest-weight words); the text, labels and scores
are never touched.  The evidence sentence's own shading (``evidence_attention``,
one sentence long) is kept whole while that suffices, else dropped whole.
"""

from __future__ import annotations

from pipeline.schema import EnrichedEvent, TaskResult, WordWeight

#: Bytes reserved for what Kafka adds around the value: kafka-python's size
#: estimate is the batch header (61 bytes) plus at most 21 bytes of record
#: framing plus key, value and headers; the key (the input id) is counted
#: exactly, and the enriched topic sends no headers, so 200 leaves room to spare.
RECORD_OVERHEAD_BYTES = 200


def record_size(event: EnrichedEvent) -> int:
    """Bytes of ``event`` as the enriched topic sends it: key, JSON value and overhead."""
    key = len(event.input_id.encode("utf-8"))
    value = len(event.to_json())
    return RECORD_OVERHEAD_BYTES + key + value


def fit_to_size(event: EnrichedEvent, max_bytes: int) -> EnrichedEvent | None:
    """Return ``event`` if its record fits in ``max_bytes``, else a trimmed copy, else None.

    The copy keeps each task's highest-weight attention words (in their
    original order), as many as fit, the same number for every task, and sets
    that task's ``attention_truncated`` to how many words were dropped.  Only
    if no attention at all would fit is ``evidence_attention`` dropped too (set
    to None: a partial sentence shading would no longer sum to one).  None
    means the event is too large even without them (the caller dead-letters it
    as ``too_large``).
    """
    if record_size(event) <= max_bytes:
        return event
    fitted = _fit_attention(event, max_bytes)
    if fitted is None and any(t.evidence_attention is not None for t in _tasks(event).values()):
        bare = {
            name: task.model_copy(update={"evidence_attention": None})
            for name, task in _tasks(event).items()
        }
        fitted = _fit_attention(event.model_copy(update=bare), max_bytes)
    return fitted


def _fit_attention(event: EnrichedEvent, max_bytes: int) -> EnrichedEvent | None:
    """``event`` with each task's attention cut to the largest common top-k that fits."""
    if record_size(event) <= max_bytes:
        return event
    ranked = {name: _by_weight(task.attention) for name, task in _tasks(event).items()}
    if record_size(_keep_top(event, ranked, 0)) > max_bytes:
        return None
    # Largest k whose record fits: the size grows with k, k = 0 fits and the
    # longest list in full did not.
    low, high = 0, max(len(order) for order in ranked.values()) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if record_size(_keep_top(event, ranked, middle)) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return _keep_top(event, ranked, low)


def _by_weight(attention: list[WordWeight]) -> list[int]:
    """Indices of ``attention``, highest weight first (ties: the earlier word)."""
    return sorted(range(len(attention)), key=lambda i: (-attention[i].weight, i))


def _tasks(event: EnrichedEvent) -> dict[str, TaskResult]:
    tasks = {"sentiment": event.sentiment}
    if event.intent is not None:
        tasks["intent"] = event.intent
    return tasks


def _keep_top(event: EnrichedEvent, ranked: dict[str, list[int]], k: int) -> EnrichedEvent:
    update = {name: _trim(task, ranked[name], k) for name, task in _tasks(event).items()}
    return event.model_copy(update=update)


def _trim(task: TaskResult, ranked: list[int], k: int) -> TaskResult:
    dropped = len(task.attention) - k
    if dropped <= 0:
        return task
    kept: list[WordWeight] = [task.attention[i] for i in sorted(ranked[:k])]
    # A record trimmed before (for a larger limit) keeps counting from the original.
    total = dropped + (task.attention_truncated or 0)
    return task.model_copy(update={"attention": kept, "attention_truncated": total})
