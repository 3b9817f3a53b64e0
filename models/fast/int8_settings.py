"""int8 quantisation settings, the agreement bar and the CPU features: no heavy imports.

Kept apart from :mod:`models.fast.quantization` (onnxruntime, torch) so the CLI can show
the defaults in its help without loading them.

ONNX Runtime's x86-64 int8 matrix kernels differ by CPU.  With VNNI (``avx512_vnni`` or
``avx_vnni``) uint8 activations x int8 weights are summed in int32.  Without it (AVX2, or
AVX-512 without VNNI) the U8S8 kernel multiplies with ``vpmaddubsw``, which adds two
uint8 x int8 products into an int16 and saturates: 255 x 127 x 2 = 64,770 > 32,767.  A
graph quantised with full-range int8 weights then gives other labels on those CPUs than the
ones measured on a VNNI machine.  ``reduce_range`` (7-bit weights, |w| <= 64: 2 x 255 x 64 =
32,640 fits) or uint8 weights (U8U8, widened to int16 before multiplying) avoid it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

#: CPU flags that decide which int8 kernel ONNX Runtime's CPU provider runs.
INT8_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
CPUINFO = Path("/proc/cpuinfo")
#: Default bar of int8 label agreement with torch, every task, on the validation texts.
#: The chosen settings measure 97.7-99.9 % (tiny model on the seed texts; MiniLM on Banking77's
#: validation split, 300 texts, and test split; see :data:`CHOSEN`): 0.97 would sit within
#: one standard error (0.9 points on 300 texts) of a sound export.  The former settings on an
#: AVX2-only CPU measured 87.7 %, and a Banking77 model on out-of-domain seed texts 91.7 %:
#: both refused.
MIN_AGREEMENT = 0.95


@dataclass(frozen=True)
class Int8Settings:
    """Arguments of ``quantize_dynamic`` that change the int8 graph."""

    #: "QInt8" (U8S8 kernels) or "QUInt8" (U8U8 kernels).
    weight_type: str = "QInt8"
    per_channel: bool = True
    #: 7-bit weights: no int16 saturation in the U8S8 kernels of CPUs without VNNI.
    reduce_range: bool = False

    def describe(self) -> str:
        """One line for logs, cards and benchmark tables."""
        scale = "per channel" if self.per_channel else "per tensor"
        bits = "7-bit" if self.reduce_range else "8-bit"
        return f"{self.weight_type} weights, {scale}, {bits}"


#: The export's settings: U8S8 with 7-bit weights, per channel.  Measured with
#: bench/int8_cpus.py (bench/RESULTS.md, "int8 on every CPU"), label agreement with torch:
#: - tiny test model, 1,402 seed texts, intent / sentiment, on an AVX-512 VNNI CPU and under
#:   QEMU as an AVX2-only Haswell: full-range QInt8 per channel (before) 98.9 / 99.9 % vs
#:   87.7 / 99.1 % (the issue's failing test); reduce_range per channel 98.2 / 99.9 % on both,
#:   with bit-identical logits (the int8 arithmetic is exact on both CPUs); U8U8 per
#:   channel 99.1 / 99.9 % on both.
#: - MiniLM teacher, 1,000 Banking77 test texts, VNNI: before 98.9 % (accuracy 89.2), this
#:   98.1 % (89.2), U8U8 98.7 % (89.4) but ORT took 2.2-4.7 x as long (U8U8 has no VNNI
#:   kernel), reduce_range per tensor 94.1 %.
#: So reduce_range per channel: the same labels on every x86-64 CPU at U8S8 speed.
CHOSEN = Int8Settings(weight_type="QInt8", per_channel=True, reduce_range=True)


def settings_dict(settings: Int8Settings) -> dict[str, str | bool]:
    """``settings`` as JSON-ready fields (config.json, metrics.json)."""
    return dict(asdict(settings))


def cpu_features(cpuinfo: Path = CPUINFO) -> dict[str, object]:
    """The CPU model and the :data:`INT8_FLAGS` it has, from ``/proc/cpuinfo``.

    ``{"model": ..., "flags": {flag: bool}}``; on a system without ``/proc/cpuinfo`` (not
    Linux) the flags are None: unknown, not absent.
    """
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {"model": None, "flags": dict.fromkeys(INT8_FLAGS)}
    model = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = set(value.split())
    return {"model": model, "flags": {flag: flag in flags for flag in INT8_FLAGS}}


def describe_cpu(features: dict[str, object]) -> str:
    """``features`` in a few words: the model and the int8 flags it has."""
    flags = features.get("flags")
    have = [name for name, on in flags.items() if on] if isinstance(flags, dict) else []
    known = isinstance(flags, dict) and all(v is not None for v in flags.values())
    vnni = " (VNNI)" if any(f in have for f in ("avx512_vnni", "avx_vnni")) else " (no VNNI)"
    listed = ", ".join(have) if known else "flags unknown"
    return f"{features.get('model') or 'unknown CPU'}: {listed}{vnni if known else ''}"
