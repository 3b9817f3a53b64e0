"""The run-loop side in a spawned child process; this process paces its input.

The child (:func:`~bench.harness.pipeline_run.pipeline_side`) has only the run loop and its
model in memory, so its peak RSS is the loop's own, and the producer of the paced runs does
not share its interpreter.  Messages on the queue, child to parent: ``("pace", PaceRequest)``
when a paced run is consuming, then ``("done", PipelineSide)`` or ``("error", traceback)``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import queue
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from consumers.connection import KafkaConnection

from . import kafka_io
from .mix import Message
from .pipeline_run import PaceRequest, PipelinePlan, PipelineSide, pipeline_side

if TYPE_CHECKING:
    # Only for the type checker: multiprocessing's Queue is not subscriptable at run time.
    Inbox = multiprocessing.queues.Queue[tuple[str, Any]]


def _child_main(plan: PipelinePlan, to_parent: Inbox) -> None:
    try:
        side = pipeline_side(plan, lambda req: to_parent.put(("pace", req)))
    except BaseException:
        to_parent.put(("error", traceback.format_exc()))
        raise
    to_parent.put(("done", side))


@dataclass
class _Pacer:
    connection: KafkaConnection
    messages: Sequence[Message]
    sent: list[float] = field(default_factory=list)

    def __call__(self, request: PaceRequest) -> None:
        self.sent.append(kafka_io.produce(self.connection, request.topics, self.messages,
                                          rate=request.rate, count=request.count, progress=False))


def run_in_child(plan: PipelinePlan, messages: Sequence[Message]) -> PipelineSide:
    """Run :func:`pipeline_side` in a spawned child; this process does the pacing."""
    context = multiprocessing.get_context("spawn")
    inbox: Inbox = context.Queue()
    child = context.Process(target=_child_main, args=(plan, inbox), name="attnwatch-bench-loop")
    child.start()
    pacer = _Pacer(plan.connection, messages)
    try:
        while True:
            try:
                kind, payload = inbox.get(timeout=1.0)
            except queue.Empty:
                if not child.is_alive():
                    msg = f"the run-loop process exited with code {child.exitcode}"
                    raise RuntimeError(msg) from None
                continue
            if kind == "pace":
                pacer(payload)
            elif kind == "done":
                side: PipelineSide = payload
                break
            else:
                msg = f"the run-loop process failed:\n{payload}"
                raise RuntimeError(msg)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()
            child.join()
    paced = [
        replace(p, sent_msg_per_s=rate) for p, rate in zip(side.paced, pacer.sent, strict=True)
    ]
    return replace(side, paced=paced)
