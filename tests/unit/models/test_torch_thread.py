"""The torch thread: every torch computation of a serving process on one OS thread."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from models.classifier import AttentionTextClassifier
from models.torch_thread import TorchThread, on_torch_thread, shared
from tests.support.waiting import wait_for


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


def test_a_call_that_never_returns_does_not_hold_up_the_process_exit() -> None:
    script = (
        "import threading\n"
        "from models.torch_thread import on_torch_thread, shared\n"
        "threading.Thread(target=lambda: on_torch_thread(threading.Event().wait), daemon=True)"
        ".start()\n"
        "while shared.ident is None: pass\n"
        "print('started', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "started"


def test_a_forked_child_gets_a_torch_thread_of_its_own() -> None:
    # The parent's thread is running; a forked child must not queue work for it.
    assert on_torch_thread(threading.get_ident) == shared.ident
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, exit without pytest's teardown
        try:
            ident = on_torch_thread(threading.get_ident)
            os.write(writer, f"{ident} {threading.get_ident()}".encode())
        finally:
            os._exit(0)
    os.close(writer)
    try:
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0], 30, "the forked child's call")
        answer = os.read(reader, 100).decode().split()
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(reader)
    assert len(answer) == 2
    worker, caller = answer
    assert worker != caller


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
