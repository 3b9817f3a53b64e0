"""Checkpoint averaging: the mean of the weights at the end of the last few epochs.

With a learning rate decaying to zero, the last epochs' weights sit around the
same minimum; their mean usually generalises a little better than any one of
them (Izmailov et al. 2018, "Averaging Weights Leads to Wider Optima").  The
trainer only keeps the average if it scores better on the validation split.
"""

from __future__ import annotations

import torch


class WeightAverage:
    """A running sum of model states; integer buffers keep their latest value."""

    def __init__(self) -> None:
        self.count = 0
        self._sum: dict[str, torch.Tensor] = {}

    def add(self, state: dict[str, torch.Tensor]) -> None:
        """Add one state (CPU tensors); floating-point tensors are summed in float64."""
        for name, value in state.items():
            if value.is_floating_point():
                total = self._sum.get(name)
                as64 = value.detach().to("cpu", torch.float64)
                self._sum[name] = as64 if total is None else total + as64
            else:
                self._sum[name] = value.detach().to("cpu", copy=True)
        self.count += 1

    def average(self, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The mean state, in the dtypes of ``like``."""
        if self.count == 0:
            msg = "no state was added to the average"
            raise ValueError(msg)
        return {
            name: (total / self.count if total.is_floating_point() else total).to(like[name].dtype)
            for name, total in self._sum.items()
        }

    def state_dict(self) -> dict[str, object]:
        """What a training checkpoint stores to resume the average."""
        return {"count": self.count, "sum": self._sum}

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore from :meth:`state_dict`."""
        count = state["count"]
        total = state["sum"]
        if not isinstance(count, int) or not isinstance(total, dict):
            msg = "malformed weight-average state"
            raise ValueError(msg)
        self.count, self._sum = count, total


def averaging_note(score: float, chosen: bool, average_last: int) -> str | None:
    """The model card's line on averaging (``None`` when no average was scored)."""
    if score < 0:
        return None
    verdict = "kept" if chosen else "not kept: the best single epoch scored higher"
    return (
        f"mean of the last {average_last} epochs' weights: validation macro-F1 "
        f"{score:.4f} ({verdict})"
    )
