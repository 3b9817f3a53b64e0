"""Fused kernels and a shorter serving length for the ONNX tier (issue 27's fast tier).

The tiny model (2 layers) is exported fused in fp32 and int8 once for the module.
"""

import json
from collections import Counter

import onnx
import pytest
from typer.testing import CliRunner

from attnwatch.cli import app
from models.classifier import AttentionTextClassifier
from models.data.loading import seed_examples
from models.fast import onnx_export
from models.fast.fusion import FusionError
from models.fast.int8_settings import CHOSEN, MIN_AGREEMENT
from models.fast.onnx_export import export_onnx
from models.fast.onnx_runtime import OnnxTextClassifier, read_onnx_info
from tests.support.model import TINY_BERT

LAYERS = TINY_BERT["num_hidden_layers"]
TEXTS = [
    "",
    "hi",
    "my card was declined at the shop and I need to pay for groceries now",
    "Bank shares fall 4% after regulator fines lender over money-laundering checks",
    " ".join(["why has the transfer to my savings account still not arrived"] * 20),
]


def ops(directory):
    return Counter(n.op_type for n in onnx.load(str(directory / "model.onnx")).graph.node)


@pytest.fixture(scope="module")
def fused_dirs(tiny_model, tmp_path_factory):
    """(fp32, int8) fused ONNX exports of the tiny model."""
    root = tmp_path_factory.mktemp("fused")
    return (
        export_onnx(tiny_model, root / "fp32", fuse=True),
        export_onnx(tiny_model, root / "int8", int8=True, fuse=True),
    )


@pytest.mark.slow
def test_fused_graph_has_one_attention_per_layer_and_torch_answers(fused_dirs, tiny_model):
    fp32, _ = fused_dirs
    counts = ops(fp32)
    assert counts["Attention"] == LAYERS and counts["SkipLayerNormalization"] == 2 * LAYERS
    assert counts["EmbedLayerNormalization"] == 1
    # only the pooling heads' (intent, sentiment): the encoder's are inside Attention
    assert counts["Softmax"] == 2
    config = json.loads((fp32 / "config.json").read_text())
    assert config["fused_operators"]["Attention"] == LAYERS
    assert "Fused kernels" in (fp32 / "README.md").read_text()
    torch_says = AttentionTextClassifier(tiny_model, "cpu").predict(TEXTS)
    fused_says = OnnxTextClassifier(fp32, max_texts=2, threads=1).predict(TEXTS)
    for text, want, have in zip(TEXTS, torch_says, fused_says, strict=True):
        for task in want:
            assert have[task].label == want[task].label, (text, task)
            assert have[task].score == pytest.approx(want[task].score, abs=1e-4)
            assert [w.word for w in have[task].words] == [w.word for w in want[task].words]
            for hw, ww in zip(have[task].words, want[task].words, strict=True):
                assert hw.weight == pytest.approx(ww.weight, abs=1e-4), (text, hw.word)


@pytest.mark.slow
def test_fused_int8_quantises_attention_with_the_chosen_settings(fused_dirs, tiny_model):
    _, int8 = fused_dirs
    counts = ops(int8)
    assert counts["QAttention"] == LAYERS and counts["Attention"] == 0
    config = json.loads((int8 / "config.json").read_text())
    assert config["quantization_settings"]["reduce_range"] is CHOSEN.reduce_range is True
    assert config["quantization_settings"]["weight_type"] == CHOSEN.weight_type
    record = json.loads((int8 / "metrics.json").read_text())["onnx_int8"]
    assert all(a >= MIN_AGREEMENT for a in record["label_agreement_with_torch"].values())
    _, test, _ = seed_examples()
    texts = [e.text for e in test]
    reference = AttentionTextClassifier(tiny_model, "cpu").predict(texts)
    quantised = OnnxTextClassifier(int8, threads=1).predict(texts)
    for task in ("intent", "sentiment"):
        same = sum(r[task].label == q[task].label for r, q in zip(reference, quantised))
        assert same / len(texts) >= MIN_AGREEMENT, (task, same / len(texts))


@pytest.mark.slow
def test_serving_length_truncates_and_cannot_exceed_the_trained_one(tiny_model, tmp_path):
    trained = json.loads((tiny_model / "config.json").read_text())["max_length"]
    short = export_onnx(tiny_model, tmp_path / "short", max_length=16)
    info = read_onnx_info(short)
    assert info.max_length == 16
    assert json.loads((short / "config.json").read_text())["trained_max_length"] == trained
    assert "truncated at 16 tokens" in (short / "README.md").read_text()
    full = OnnxTextClassifier(export_onnx(tiny_model, tmp_path / "full"), threads=1)
    long_text = TEXTS[-1]
    cut = OnnxTextClassifier(short, threads=1).predict([long_text])[0]["intent"].words
    assert 0 < len(cut) < len(full.predict([long_text])[0]["intent"].words)
    with pytest.raises(ValueError, match=r"max_length must be in \[8, "):
        export_onnx(tiny_model, tmp_path / "longer", max_length=trained + 1)
    assert not (tmp_path / "longer").exists()


@pytest.mark.slow
def test_a_graph_that_does_not_fuse_is_refused_and_leaves_nothing(
    tiny_model, tmp_path, monkeypatch
):
    # Traced with scaled_dot_product_attention (the pattern the optimiser does not know).
    monkeypatch.setattr(onnx_export, "eager_attention", lambda encoder: None)
    with pytest.raises(FusionError, match="expected"):
        export_onnx(tiny_model, tmp_path / "out", fuse=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_cli_exports_fused_and_short(tiny_model, tmp_path):
    out = tmp_path / "fast"
    command = ["model", "export-onnx", str(tiny_model), "--out", str(out), "--fuse"]
    result = CliRunner().invoke(app, [*command, "--max-length", "24"])
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "(fused fp32)" in result.stdout
    assert read_onnx_info(out).max_length == 24 and ops(out)["Attention"] == LAYERS
