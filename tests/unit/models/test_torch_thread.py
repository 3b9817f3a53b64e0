"""The torch thread: every torch computation of a serving process on one OS thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from models.classifier import AttentionTextClassifier
from models.torch_thread import TorchThread, shared


def test_work_from_any_thread_runs_on_one_thread_in_order() -> None:
    worker = TorchThread("test-torch")
    seen: list[tuple[int, int]] = []

    def record(i: int) -> int:
        seen.append((i, threading.get_ident()))
        return i * i

    callers = [
        threading.Thread(target=lambda i=i: worker.call(lambda: record(i))) for i in range(4)
    ]
    for caller in callers:
        caller.start()
        caller.join(timeout=10)
    assert worker.call(lambda: record(9)) == 81
    assert [i for i, _ in seen] == [0, 1, 2, 3, 9]
    assert {ident for _, ident in seen} == {worker.ident}
    assert worker.ident != threading.get_ident()


def test_an_error_is_raised_in_the_caller_and_the_thread_goes_on() -> None:
    worker = TorchThread("test-torch")

    def fail() -> None:
        raise ValueError("bad shape")

    with pytest.raises(ValueError, match="bad shape"):
        worker.call(fail)
    assert worker.call(lambda: "still serving") == "still serving"


def test_a_call_made_on_the_torch_thread_runs_at_once() -> None:
    worker = TorchThread("test-torch")
    assert worker.call(lambda: worker.call(lambda: threading.get_ident())) == worker.ident


@pytest.mark.slow
def test_the_classifier_loads_and_forwards_on_the_shared_thread(tiny_model: Path) -> None:
    classifier = AttentionTextClassifier(tiny_model, device="cpu")
    forwards: list[int] = []
    classifier._model.register_forward_hook(  # noqa: SLF001 - where the forward ran
        lambda *_: forwards.append(threading.get_ident())
    )
    from_elsewhere: list[object] = []
    caller = threading.Thread(
        target=lambda: from_elsewhere.extend(classifier.predict(["where is my card"]))
    )
    caller.start()
    caller.join(timeout=60)
    classifier.predict(["my card was declined twice"])

    assert len(from_elsewhere) == 1
    assert len(forwards) == 2
    assert set(forwards) == {shared.ident}
    assert {p.device.type for p in classifier._model.parameters()} == {"cpu"}  # noqa: SLF001
