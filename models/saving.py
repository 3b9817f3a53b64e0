"""A saved model is a directory, loadable without the code that trained it.

Layout::

    config.json        format version, name, version, encoder config, tasks, max length
    model.safetensors  all weights (encoder and heads)
    labels.json        label maps per task
    tokenizer files    as the tokenizer saves them
    README.md          the model card (metrics, data hash, time, hardware)
    metrics.json       the card's numbers, machine-readable
    calibration.json   intent temperature and unknown-intent threshold (optional)

The version is the first 12 hex digits of the weights' SHA-256, so a logged
prediction always points at exactly one set of weights.  An ONNX Runtime export
(:mod:`models.fast`) has the same layout with ``model.onnx`` in place of the safetensors
weights and ``"runtime": "onnx"`` in ``config.json``; its version is ``model.onnx``'s hash.

Weights are read only through safetensors (or as an ONNX protobuf).  Loading a pickle
(``torch.load`` of a ``.bin``/``.pt``, joblib, ...) can run arbitrary code, so a directory
that holds a pickle weight file anywhere is refused with :class:`ModelFormatError`, even though
this loader would never open it: whoever put it there may expect it to be used.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, PreTrainedTokenizerBase

from models.encoding import load_tokenizer, tokenizer_hash
from models.modeling import AttentionClassifier, TaskSpec

# The errors are part of this module's interface (callers catch models.saving.ModelDirError).
from models.weight_files import ModelDirError as ModelDirError
from models.weight_files import ModelFormatError as ModelFormatError
from models.weight_files import refuse_pickle_weights

FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CALIBRATION = "calibration.json"


@dataclass(frozen=True)
class ModelInfo:
    """What a saved model says about itself."""

    name: str
    version: str
    tokenizer_hash: str
    max_length: int
    tasks: tuple[TaskSpec, ...]
    encoder_source: str
    created_at: str
    #: Per task: did training find its logged attention faithful (``metrics.json``'s
    #: ``faithfulness``, see ``models.training.trust``)?  ``None`` = not judged; a task
    #: missing = not measured (a model saved before training measured it).
    attention_faithful: Mapping[str, bool | None] = field(default_factory=dict)


@dataclass
class LoadedModel:
    """A model ready for inference, with its tokenizer and identity."""

    model: AttentionClassifier
    tokenizer: PreTrainedTokenizerBase
    info: ModelInfo
    #: Intent temperature and unknown threshold (``calibration.json``), if trained with one.
    calibration: dict[str, Any] | None = None


def _honour_umask(path: Path) -> None:
    """Give ``path`` the mode any new file gets (0644 under the usual umask 022).

    safetensors writes its file 0600 whatever the umask, so a model trained by one user
    (root in an image build) could not be read by the service user that loads it.
    """
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def save_model(
    model: AttentionClassifier,
    tokenizer: PreTrainedTokenizerBase,
    directory: Path,
    *,
    name: str,
    max_length: int,
    encoder_source: str,
    created_at: str,
    card: str,
    metrics: dict[str, Any],
    calibration: dict[str, Any] | None = None,
) -> ModelInfo:
    """Write ``model`` as a directory; returns its identity (with the weights' hash)."""
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS), metadata={"format": "pt"})
    _honour_umask(directory / WEIGHTS)
    version = file_hash(directory / WEIGHTS)[:12]
    tokenizer.save_pretrained(str(directory))
    tasks = tuple(model.tasks.values())
    info = ModelInfo(
        name=name,
        version=version,
        tokenizer_hash=tokenizer_hash(tokenizer),
        max_length=max_length,
        tasks=tasks,
        encoder_source=encoder_source,
        created_at=created_at,
        attention_faithful=trust_verdicts(metrics),
    )
    config = {
        "format_version": FORMAT_VERSION,
        "name": name,
        "version": version,
        "tokenizer_hash": info.tokenizer_hash,
        "max_length": max_length,
        "encoder_source": encoder_source,
        "created_at": created_at,
        "encoder": model.encoder.config.to_dict(),
        "tasks": [{"name": t.name, "num_heads": t.num_heads} for t in tasks],
    }
    labels = {t.name: list(t.labels) for t in tasks}
    write_json(directory / "config.json", config)
    write_json(directory / "labels.json", labels)
    write_json(directory / "metrics.json", metrics)
    calibration_file = directory / CALIBRATION
    if calibration is not None:
        write_json(calibration_file, calibration)
    elif calibration_file.exists():
        calibration_file.unlink()
    (directory / "README.md").write_text(card, encoding="utf-8")
    return info


def read_info(directory: Path) -> ModelInfo:
    """Read a saved model's identity without loading its weights."""
    config = _read_json(directory, "config.json")
    labels = _read_json(directory, "labels.json")
    if config.get("format_version") != FORMAT_VERSION:
        msg = f"{directory}: format_version {config.get('format_version')!r} is not supported"
        raise ModelDirError(msg)
    tasks = tuple(
        TaskSpec(t["name"], tuple(labels[t["name"]]), int(t["num_heads"])) for t in config["tasks"]
    )
    return ModelInfo(
        name=config["name"],
        version=config["version"],
        tokenizer_hash=config["tokenizer_hash"],
        max_length=int(config["max_length"]),
        tasks=tasks,
        encoder_source=config["encoder_source"],
        created_at=config["created_at"],
        attention_faithful=read_trust(directory),
    )


def load_model(directory: Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Load a saved model for inference (eval mode, on ``device``).

    Raises :class:`ModelFormatError` if the directory holds a pickle weight file or
    ``model.safetensors`` is not a safetensors file, :class:`ModelDirError` if it is
    not a complete saved model.
    """
    info = read_info(directory)  # first: a wrong --model-dir fails here, before a deep scan
    refuse_pickle_weights(directory)
    weights = directory / WEIGHTS
    if not weights.is_file():
        msg = f"{directory}: {WEIGHTS} is missing"
        raise ModelDirError(msg)
    config = read_config(directory)
    encoder_config = dict(config["encoder"])
    model_type = encoder_config.pop("model_type")
    model = AttentionClassifier.from_config(
        AutoConfig.for_model(model_type, **encoder_config), info.tasks
    )
    try:
        state = load_file(str(weights))
    except SafetensorError as exc:
        msg = f"{weights} is not a safetensors file: {exc}"
        raise ModelFormatError(msg) from exc
    model.load_state_dict(state)
    model.to(device).eval()
    tokenizer = load_tokenizer(directory)
    if tokenizer_hash(tokenizer) != info.tokenizer_hash:
        msg = f"{directory}: tokenizer files do not match the tokenizer the model was saved with"
        raise ModelDirError(msg)
    return LoadedModel(model, tokenizer, info, read_calibration(directory))


def read_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of a saved model as a dict; :class:`ModelDirError` if it is missing."""
    config = _read_json(directory, "config.json")
    if not isinstance(config, dict):
        msg = f"{directory}: config.json is not a JSON object"
        raise ModelDirError(msg)
    return config


def read_calibration(directory: Path) -> dict[str, Any] | None:
    """``calibration.json`` of a saved model, or ``None`` when it was trained without one."""
    if not (directory / CALIBRATION).is_file():
        return None
    calibration: dict[str, Any] = _read_json(directory, CALIBRATION)
    return calibration


def read_trust(directory: Path) -> dict[str, bool | None]:
    """Each task's attention-faithfulness verdict from ``metrics.json`` (empty if none)."""
    path = directory / "metrics.json"
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"{directory}: metrics.json is unreadable ({exc})"
        raise ModelDirError(msg) from exc
    return trust_verdicts(metrics) if isinstance(metrics, dict) else {}


def trust_verdicts(metrics: Mapping[str, Any]) -> dict[str, bool | None]:
    """Each task's ``faithful`` verdict from a ``metrics.json`` mapping (empty if unmeasured)."""
    found = metrics.get("faithfulness")
    if not isinstance(found, Mapping):
        return {}
    verdicts: dict[str, bool | None] = {}
    for task, entry in found.items():
        value = entry.get("faithful") if isinstance(entry, Mapping) else None
        verdicts[str(task)] = value if isinstance(value, bool) else None
    return verdicts


def file_hash(path: Path) -> str:
    """SHA-256 of a file as hex; a model's version is its weight file's first 12 digits."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as the model directory's JSON files are written (sorted, indented)."""
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _read_json(directory: Path, name: str) -> Any:
    path = directory / name
    if not path.is_file():
        msg = f"{directory} is not a saved attnwatch model: {name} is missing"
        raise ModelDirError(msg)
    return json.loads(path.read_text(encoding="utf-8"))
