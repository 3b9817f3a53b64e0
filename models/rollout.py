"""Model rollout: repoint the serving model link atomically, after the new model proved itself.

The run loop serves the model at ``model_dir``; in a deployment that is a symbolic link
(``/models/current -> v2``) which :func:`promote` replaces with ``rename(2)``, atomic on
POSIX: a run loop checking the link sees the old target or the new one, never a missing or
half-written model.  Before the switch the new model is loaded and smoke-tested in this
process, so a directory that would be refused by every run loop is refused here first.  The
link it replaced is kept as ``<link>.previous``; :func:`rollback` promotes that one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.classifier import TextClassifier
from models.saving import ModelDirError, ModelInfo
from models.smoke import smoke_test

PREVIOUS_SUFFIX = ".previous"


@dataclass(frozen=True)
class Promotion:
    """What :func:`promote` did: the link, its new target and model, the target it replaced."""

    link: Path
    target: Path
    info: ModelInfo
    previous: Path | None


def promote(target: Path, link: Path, load: Callable[[Path], TextClassifier]) -> Promotion:
    """Point ``link`` at the model directory ``target`` once it loads and passes the smoke test.

    Raises :class:`~models.saving.ModelDirError` when ``link`` is a real directory (it must
    be a link, or absent) or ``target`` is not a model, and
    :class:`~models.smoke.SmokeTestError` when the model answers badly.  ``link`` is left
    untouched in every failure.
    """
    if link.exists() and not link.is_symlink():
        msg = (
            f"{link} is a directory, not a link: move it aside and promote it, e.g. "
            f"`mv {link} {link}-v1 && attnwatch model promote {link}-v1`"
        )
        raise ModelDirError(msg)
    resolved = Path(os.path.realpath(target))
    if not resolved.is_dir():
        msg = f"{target} is not a directory"
        raise ModelDirError(msg)
    classifier = load(resolved)
    smoke_test(classifier)
    previous = Path(os.path.realpath(link)) if link.is_symlink() else None
    link.parent.mkdir(parents=True, exist_ok=True)
    if previous is not None and previous != resolved:
        _replace_link(link.with_name(link.name + PREVIOUS_SUFFIX), previous)
    _replace_link(link, resolved)
    return Promotion(link, resolved, classifier.info, previous)


def rollback(link: Path, load: Callable[[Path], TextClassifier]) -> Promotion:
    """Promote the model ``link`` pointed at before the last :func:`promote`."""
    previous = link.with_name(link.name + PREVIOUS_SUFFIX)
    if not previous.is_symlink():
        msg = f"no previous model recorded for {link} (no {previous})"
        raise ModelDirError(msg)
    return promote(previous, link, load)


def _replace_link(link: Path, target: Path) -> None:
    """Make ``link`` point at ``target`` in one rename (relative when it lies beside it)."""
    try:
        pointer = os.path.relpath(target, link.parent)
    except ValueError:  # another drive (Windows): only an absolute target works
        pointer = str(target)
    if pointer.startswith(".."):
        pointer = str(target)
    temporary = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    os.symlink(pointer, temporary, target_is_directory=True)
    os.replace(temporary, link)
