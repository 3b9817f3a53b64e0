"""Repeated texts cost one forward: a bounded LRU cache of predictions in front of a classifier.

Agent macros, greetings, "thanks" and news boilerplate repeat in real streams, and the
classifier is a pure function of (model, tasks, text).  :class:`CachedClassifier` wraps any
:class:`~models.classifier.TextClassifier`: texts it has answered before under the same model
version and tasks are answered from :class:`PredictionCache`; only the others go to the model,
in one ``predict`` call, each distinct text once, in order.

- The key is ``(model version, tasks asked, exact text)``: the text the classifier reads, so
  redacted text when redaction runs first (two card numbers redacted to ``[CARD]`` are one
  entry).  Texts stay in process memory only, like the batch they came in.
- A hit returns the very :class:`~models.classifier.TaskPrediction` objects computed the first
  time (frozen dataclasses holding tuples of frozen :class:`~models.words.WordWeight`), so the
  label, scores and word weights are identical; each caller gets its own ``dict`` around them,
  so a caller that edits its mapping cannot change what the cache hands out next.
- Memory is bounded by ``max_bytes``, estimated per entry by :func:`entry_bytes` (measured
  constants, see there); least recently used entries are evicted first.  An entry larger than
  the whole budget is not kept.
- A hot reload empties it (:meth:`CachedClassifier.use`), so no answer of an old model is
  served after the swap even if the new model reuses the version string.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Sequence

from models.classifier import Prediction, TaskPrediction, TextClassifier
from models.saving import ModelInfo
from models.words import WordWeight
from pipeline.metrics import Metrics

#: (model version, tasks asked, text).
Key = tuple[str, tuple[str, ...], str]

# An entry's size is estimated from sys.getsizeof plus what it cannot see, checked against
# tracemalloc (the unit test holds it within 15%; bench/prediction_cache.py reports both).
#: The LRU slot, the key and value tuples, the prediction dict (measured with tracemalloc).
ENTRY_OVERHEAD = 420
#: An offset above 256 (CPython shares the objects of smaller ints; 28 bytes, allocated as 32).
LARGE_INT = 32
_POINTER = 8
_FLOAT = sys.getsizeof(0.5)
_EMPTY_TUPLE = sys.getsizeof(())


def _object_bytes(sample: object) -> int:
    """``sys.getsizeof(sample)`` plus the attribute storage it leaves out.

    A plain class (a dataclass) keeps its attributes in a values array beside the object on
    CPython 3.11 (a 16-byte header and a pointer per attribute); a slotted class (a msgspec
    struct) holds them inside.  ``vars`` is read on this one sample only: reading it builds a
    dict, which the cached objects must not get.
    """
    size = sys.getsizeof(sample)
    if hasattr(sample, "__dict__"):
        size += 16 + _POINTER * len(vars(sample))
    return size


#: One WordWeight with its float and its slot in ``words``, beyond its string and offsets.
WORD_OVERHEAD = _object_bytes(WordWeight("ab", 0.5, 0, 2)) + _FLOAT + _POINTER
#: A TaskPrediction with its score and its ``top`` and ``words`` tuples (without items).
TASK_OVERHEAD = _object_bytes(TaskPrediction("a", 0.5, (), ())) + _FLOAT + 2 * _EMPTY_TUPLE
#: One (label, probability) pair of ``top`` with its slot (labels are the model's strings).
TOP_ITEM = sys.getsizeof(("a", 0.5)) + _FLOAT + _POINTER


def entry_bytes(text: str, prediction: Prediction) -> int:
    """Estimated bytes an entry holds: its text, and per task the word weights and top.

    One-character words are not counted (CPython shares one-character Latin-1 strings, and
    most are punctuation); nor are labels and task names (the model's own strings).
    """
    total = ENTRY_OVERHEAD + sys.getsizeof(text)
    for answer in prediction.values():
        total += TASK_OVERHEAD + TOP_ITEM * len(answer.top)
        for w in answer.words:
            total += WORD_OVERHEAD + LARGE_INT * ((w.start > 256) + (w.end > 256))
            if len(w.word) > 1:
                total += sys.getsizeof(w.word)
    return total


class PredictionCache:
    """An LRU map from :data:`Key` to a prediction, bounded by estimated bytes; thread-safe."""

    def __init__(self, max_bytes: int, metrics: Metrics | None = None) -> None:
        if max_bytes < 0:
            msg = f"max_bytes must be >= 0, got {max_bytes}"
            raise ValueError(msg)
        self.max_bytes = max_bytes
        self._metrics = metrics
        self._entries: OrderedDict[Key, tuple[Prediction, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        #: Texts answered without the model (from the cache, or a repeat within one call).
        self.hits = 0
        #: Texts sent to the model.
        self.misses = 0
        self._publish()

    @property
    def entries(self) -> int:
        """Predictions held now."""
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Estimated bytes held now (never above ``max_bytes``)."""
        return self._bytes

    def get_many(self, keys: Sequence[Key]) -> list[Prediction | None]:
        """Each key's prediction (marked recently used), or ``None``; counts nothing."""
        with self._lock:
            found: list[Prediction | None] = []
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                found.append(entry[0] if entry is not None else None)
            return found

    def put_many(self, items: Sequence[tuple[Key, Prediction]]) -> None:
        """Keep each prediction, evicting the least recently used beyond ``max_bytes``."""
        with self._lock:
            for key, prediction in items:
                size = entry_bytes(key[2], prediction)
                if size > self.max_bytes:
                    continue
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= old[1]
                self._entries[key] = (prediction, size)
                self._bytes += size
                while self._bytes > self.max_bytes:
                    _, (_, evicted) = self._entries.popitem(last=False)
                    self._bytes -= evicted
            self._publish()

    def count(self, hits: int, misses: int) -> None:
        """Add to the hit and miss totals (and their counters)."""
        with self._lock:
            self.hits += hits
            self.misses += misses
        if self._metrics is not None:
            self._metrics.prediction_cache_hits.inc(hits)
            self._metrics.prediction_cache_misses.inc(misses)

    def clear(self) -> None:
        """Forget every prediction (a new model is serving); the totals stay."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self._publish()

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.prediction_cache_entries.set(len(self._entries))
            self._metrics.prediction_cache_bytes.set(self._bytes)


class CachedClassifier:
    """A :class:`~models.classifier.TextClassifier` that asks its inner model only once per text.

    ``info`` is the inner model's.  The run loop holds one of these for its whole life;
    :meth:`use` puts a reloaded model inside and empties the cache.
    """

    def __init__(self, inner: TextClassifier, cache: PredictionCache) -> None:
        self._inner = inner
        self._cache = cache

    @property
    def info(self) -> ModelInfo:
        """The inner model's name, version and tokenizer hash."""
        return self._inner.info

    @property
    def inner(self) -> TextClassifier:
        """The model that answers misses."""
        return self._inner

    @property
    def cache(self) -> PredictionCache:
        """Where the answers are kept."""
        return self._cache

    def use(self, inner: TextClassifier) -> None:
        """Answer with ``inner`` from now on; the old model's predictions are dropped."""
        self._inner = inner
        self._cache.clear()

    def predict(self, texts: Sequence[str], tasks: Sequence[str] | None = None) -> list[Prediction]:
        """Like the inner model's ``predict``; misses go to it in one call, each text once."""
        if not texts:
            return []
        info = self._inner.info
        asked = tuple(tasks) if tasks is not None else tuple(t.name for t in info.tasks)
        keys = [(info.version, asked, text) for text in texts]
        out = self._cache.get_many(keys)
        # Distinct missing texts in first-seen order, each with where it goes.
        missing: dict[str, list[int]] = {}
        for index, (text, found) in enumerate(zip(texts, out, strict=True)):
            if found is None:
                missing.setdefault(text, []).append(index)
        if missing:
            answers = self._inner.predict(list(missing), tasks)
            if len(answers) != len(missing):
                msg = f"the classifier answered {len(answers)} of {len(missing)} texts"
                raise RuntimeError(msg)
            for positions, answer in zip(missing.values(), answers, strict=True):
                for index in positions:
                    out[index] = answer
            self._cache.put_many(
                [((info.version, asked, text), a) for text, a in zip(missing, answers, strict=True)]
            )
        self._cache.count(hits=len(texts) - len(missing), misses=len(missing))
        # Every position is filled: a hit, or a missing text's answer just given.
        return [dict(p) for p in out if p is not None]


def cached(
    classifier: TextClassifier, budget_mb: float, metrics: Metrics | None = None
) -> TextClassifier:
    """``classifier`` behind a cache of ``budget_mb`` MiB; itself when ``budget_mb`` is 0."""
    if budget_mb <= 0:
        return classifier
    return CachedClassifier(classifier, PredictionCache(int(budget_mb * 2**20), metrics))


def swap(serving: TextClassifier, new: TextClassifier) -> TextClassifier:
    """What serves after a hot reload to ``new``: the same cache, emptied, if there is one."""
    if isinstance(serving, CachedClassifier) and not isinstance(new, CachedClassifier):
        serving.use(new)
        return serving
    if isinstance(serving, CachedClassifier):
        serving.cache.clear()
    return new
