"""What an interrupted training run needs to continue: progress, best and last weights.

Written atomically (a temporary file, then a rename) after every epoch, under
``<output_dir>/checkpoint/``; the trainer removes the folder once the model is saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn


@dataclass
class Progress:
    """Where training stands: epochs done, best validation score, losses, history."""

    epoch: int = 0
    best: float = -1.0
    best_epoch: int = -1
    stale: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    #: Validation macro-F1 of the mean of the last epochs' weights (-1 = not computed).
    averaged_score: float = -1.0
    averaged_chosen: bool = False
    #: The running weight average of the last epochs (the ``state_dict()`` of
    #: ``averaging.weight_average``: the mean and ``n_averaged``), saved with the rest so a
    #: resumed run neither loses nor double-counts an epoch.
    average_state: dict[str, torch.Tensor] | None = None


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached CPU copy of the model's weights (safe to keep while training goes on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_best(directory: Path, state: dict[str, torch.Tensor]) -> None:
    """Write the best epoch's weights (atomically)."""
    _write_atomically(state, directory / "best.pt")


def save_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
    progress: Progress,
) -> None:
    """Everything needed to continue after the last finished epoch (written atomically)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "progress": {
            "epoch": progress.epoch,
            "best": progress.best,
            "best_epoch": progress.best_epoch,
            "stale": progress.stale,
            "seconds": progress.seconds,
            "losses": progress.losses,
            "history": progress.history,
            "average_state": progress.average_state,
        },
    }
    _write_atomically(state, directory / "state.pt")


def load_checkpoint(
    directory: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LambdaLR,
) -> Progress:
    """Restore model, optimiser and schedule; return the progress saved with them."""
    # weights_only: tensors and plain containers only; a tampered checkpoint cannot run code.
    state = torch.load(directory / "state.pt", weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return Progress(**state["progress"])


def _write_atomically(payload: object, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, temporary)
    temporary.replace(path)
