"""Which weight files attnwatch reads: safetensors only, never a pickle.

Loading a pickle (``torch.load`` of a ``.bin``/``.pt``, joblib, ...) can run arbitrary code,
so :func:`refuse_pickle_weights` refuses a directory holding one.  Both the network
(:mod:`models.modeling`, loading a pretrained encoder) and the saved-model loader
(:mod:`models.saving`) use it; it lives here so that neither imports the other to get it.
"""

from __future__ import annotations

from pathlib import Path

#: Endings of weight files written with pickle (torch.save, joblib, pickle): never loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib")


class ModelDirError(ValueError):
    """The directory is not a complete saved attnwatch model."""


class ModelFormatError(ModelDirError):
    """Weights in a format attnwatch refuses to read: anything but safetensors."""


def pickle_weight_files(directory: Path) -> list[Path]:
    """The pickle-format weight files under ``directory`` (any depth), sorted."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.suffix.lower() in PICKLE_SUFFIXES and path.is_file()
    )


def refuse_pickle_weights(directory: Path, *, allow_beside_safetensors: bool = False) -> None:
    """Raise :class:`ModelFormatError` naming the pickle weight files under ``directory``.

    With ``allow_beside_safetensors`` (an encoder from the Hugging Face layout, which often
    ships both formats), pickles are tolerated when safetensors weights sit beside them:
    the caller then loads only those.
    """
    pickles = pickle_weight_files(directory)
    if not pickles:
        return
    if allow_beside_safetensors and any(directory.glob("*.safetensors")):
        return
    names = ", ".join(str(p.relative_to(directory)) for p in pickles)
    msg = (
        f"{directory}: refusing pickle weight file(s) {names}: attnwatch loads only "
        "safetensors weights, because unpickling can run arbitrary code"
    )
    raise ModelFormatError(msg)
