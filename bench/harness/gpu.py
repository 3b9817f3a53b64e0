"""The GPU rows of a harness run (``--device cuda``): the limit and the run loop on the GPU.

With a CUDA device every side runs on it, the batch sizes tried are larger
(:data:`GPU_BATCH_SIZES`), and the rows report the limit, the run loop at each batch size and
the size that wins.  Without one the harness says so, runs on the CPU, and the rows stay
empty with the reason: a report, not a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

#: Run-loop batch sizes tried on a GPU when ``--batch-sizes`` is not given: a GPU's forward
#: gains from larger batches than the CPU's 32-128.
GPU_BATCH_SIZES = (64, 128, 256, 512)
GPU_LIMIT_BATCH_SIZES = (64, 128, 256, 512)


def wants_gpu(device: str) -> bool:
    """``cuda`` or ``cuda:N``."""
    return device.startswith("cuda")


def cuda_missing(device: str) -> str:
    """Why ``device`` cannot be used here ("" when it can, or when it is not a GPU)."""
    if not wants_gpu(device):
        return ""
    if not torch.cuda.is_available():
        built = torch.version.cuda
        why = (
            "this torch has no CUDA support"
            if built is None
            else (f"torch {torch.__version__} (CUDA {built}) finds no CUDA device")
        )
        return f"--device {device} asked for a GPU, but {why}"
    index = torch.device(device).index or 0
    if index >= torch.cuda.device_count():
        return f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here"
    return ""


@dataclass(frozen=True)
class GpuRows:
    """What the report's GPU section shows; empty numbers when no GPU ran."""

    requested: str
    ran: bool
    reason: str = ""
    name: str = ""
    limit_msg_per_s: float | None = None
    limit_batch_size: int | None = None
    loop_msg_per_s_by_batch_size: dict[int, float] = field(default_factory=dict)
    winner_batch_size: int | None = None
    loop_over_limit: float | None = None

    def lines(self) -> list[str]:
        """Plain-text lines (the markdown section uses them too)."""
        if not self.ran:
            return [
                f"GPU: no GPU run ({self.reason}); the GPU rows are empty.",
                "  limit on the GPU: -; run loop on the GPU: -; winning batch size: -",
            ]
        tried = ", ".join(
            f"{size}: {v:.1f}" for size, v in self.loop_msg_per_s_by_batch_size.items()
        )
        return [
            f"GPU {self.name} ({self.requested}):",
            f"  limit on the GPU: {self.limit_msg_per_s:.1f} msg/s "
            f"(forward batch {self.limit_batch_size})",
            f"  run loop on the GPU, msg/s by batch_max_size: {tried}",
            f"  winning batch size: {self.winner_batch_size} "
            f"(run loop / limit {self.loop_over_limit:.3f})",
        ]


def gpu_rows(
    requested: str,
    reason: str,
    *,
    limit_msg_per_s: float,
    limit_batch_size: int,
    loop: dict[int, float],
) -> GpuRows:
    """The rows of a run that asked for ``requested`` (``reason``: why it did not run there)."""
    if reason or not loop:
        return GpuRows(requested, ran=False, reason=reason or "no run-loop result")
    winner = max(loop, key=loop.__getitem__)
    return GpuRows(
        requested,
        ran=True,
        name=torch.cuda.get_device_name(torch.device(requested)),
        limit_msg_per_s=round(limit_msg_per_s, 1),
        limit_batch_size=limit_batch_size,
        loop_msg_per_s_by_batch_size={k: round(v, 1) for k, v in loop.items()},
        winner_batch_size=winner,
        loop_over_limit=round(loop[winner] / limit_msg_per_s, 3),
    )
