"""Export a model directory to ONNX, optionally with static int8 quantization, for fast CPU inference.

    textarmor export runs/sst2 --onnx --quantize int8 --out runs/sst2-int8

The result is a model directory that :class:`textarmor.Classifier` loads with the ONNX Runtime backend:
``model.onnx``, the tokenizer, ``config.json`` and ``textarmor.json`` (with an ``onnx`` section). It keeps
Optimum's conventions for ``ORTModelForSequenceClassification``: the file name ``model.onnx``, int64 inputs
``input_ids``, ``attention_mask`` (and ``token_type_ids`` where the tokenizer makes them) with axes
``batch_size`` and ``sequence_length``, and one float output ``logits`` of shape (batch_size, num_labels).

Quantization is static: activation ranges are calibrated once on sample texts and frozen in the graph.
Dynamic quantization computes them per batch, so a text's scores change with the batch it lands in, which
moves predictions across a decision threshold (onnxruntime issue 10111). Only the MatMuls of linear layers
(those with a constant weight) are quantized, and only at their inputs: their outputs stay fp32, so ONNX
Runtime runs each as one MatMulIntegerToFloat kernel instead of a quantized product followed by a
dequantization (faster, and one rounding fewer). Attention's activation × activation products stay in
fp32, where int8 costs accuracy and saves little.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from textarmor.errors import OutputExistsError, ParameterError
from textarmor.model_dir import CONFIG_NAME, ONNX_FILE, TOKENIZER_FILES, TextArmorConfig

QUANTIZATIONS = (None, "int8")
_COPIED = ("config.json", CONFIG_NAME, "metrics.json") + TOKENIZER_FILES


def _export_fp32(model, tokenizer, path: Path, opset: int) -> list[str]:
    import torch

    names = ["input_ids", "attention_mask"] + (
        ["token_type_ids"] if "token_type_ids" in tokenizer.model_input_names else [])
    sample = tokenizer(["an example sentence to trace", "short"], padding=True, return_tensors="pt")

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *args):
            return self.inner(**dict(zip(names, args))).logits

    # Optimum's axis names, so tools that read them (ORTModel's IO binding) find what they expect.
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in names} | {"logits": {0: "batch_size"}}
    args = tuple(sample[name] for name in names)
    wrapped = LogitsOnly(model.eval())
    try:
        torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    except TypeError:  # releases without the dynamo switch
        torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"],
                          dynamic_axes=axes, opset_version=opset)
    return names


class _CalibrationReader:
    """Feeds calibration batches to ONNX Runtime's calibrator."""

    def __init__(self, tokenizer, texts: Sequence[str], names: list[str], max_length: int, batch_size: int = 16):
        self._batches = []
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                            max_length=max_length, return_tensors="np")
            self._batches.append({name: enc[name].astype(np.int64) for name in names})
        self._iter = iter(self._batches)

    def get_next(self):
        return next(self._iter, None)

    def rewind(self):
        self._iter = iter(self._batches)


def _weight_matmuls(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    constants = {init.name for init in graph.initializer}
    return [node.name for node in graph.node if node.op_type == "MatMul" and node.input[1] in constants]


def quantize_int8(fp32_path: Path, out_path: Path, tokenizer, texts: Sequence[str], names: list[str],
                  max_length: int) -> None:
    """Static int8 quantization (QDQ, per-channel weights) of the linear layers, calibrated on ``texts``."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out_path.with_name("prepared.onnx")
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    quantize_static(str(prepared), str(out_path), _CalibrationReader(tokenizer, texts, names, max_length),
                    quant_format=QuantFormat.QDQ, per_channel=True, weight_type=QuantType.QInt8,
                    activation_type=QuantType.QUInt8, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_quantize=_weight_matmuls(prepared), op_types_to_quantize=["MatMul"],
                    extra_options={"OpTypesToExcludeOutputQuantization": ["MatMul"]})
    prepared.unlink()


def calibration_texts(model_dir: Path, calibration_data: str | None, rows: int, seed: int = 0) -> list[str]:
    """Texts to calibrate on: ``calibration_data`` if given, else the model's recorded training data."""
    from textarmor.data import load_dataset

    source = calibration_data
    if source is None:
        config = TextArmorConfig.load(model_dir)
        source = (config.training.get("train_data") if config else None)
        if not source:
            raise ParameterError("int8 quantization needs sample texts to calibrate on and this model records no "
                                 "training data; pass --calibration-data FILE (a few hundred typical inputs).")
    dataset, _ = load_dataset(source, label_column=None)
    if dataset.num_rows > rows:
        dataset = dataset.shuffle(seed=seed).select(range(rows))
    return list(dataset["text"])


# 11 is the first opset with CumSum (RoBERTa's position ids); 20 the newest torch's TorchScript exporter writes.
OPSETS = (11, 20)


def export_onnx(model_dir: str | os.PathLike, out_dir: str | os.PathLike, *, quantize: str | None = None,
                calibration_data: str | None = None, calibration_rows: int = 256, opset: int = 17,
                overwrite: bool = False) -> Path:
    """Write an ONNX model directory at ``out_dir``; with ``quantize="int8"``, statically quantized."""
    from textarmor.models import load_model, load_tokenizer

    if quantize not in QUANTIZATIONS:
        raise ParameterError(f"quantize must be one of {QUANTIZATIONS}, got {quantize!r}.")
    if not isinstance(opset, int) or not OPSETS[0] <= opset <= OPSETS[1]:
        raise ParameterError(f"opset must be an ONNX opset from {OPSETS[0]} to {OPSETS[1]}, got {opset!r}.")
    src, out = Path(model_dir), Path(out_dir)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"Output directory '{out}' already exists. Pass --overwrite, or choose another --out.")
    # Eager attention traces to plain MatMul/Softmax; SDPA's export adds mask-repair ops (Where, IsNaN)
    # that cost time on every pass and compute the same scores.
    model = load_model(str(src), attn_implementation="eager")
    tokenizer = load_tokenizer(str(src))
    config = TextArmorConfig.load(src) or TextArmorConfig(labels=[model.config.id2label[i]
                                                                  for i in sorted(model.config.id2label)])
    max_length = config.max_length or 128
    texts = calibration_texts(src, calibration_data, calibration_rows) if quantize else []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        staging = Path(tmp) / "model"
        staging.mkdir()
        fp32 = Path(tmp) / "fp32.onnx"
        names = _export_fp32(model, tokenizer, fp32, opset)
        if quantize == "int8":
            quantize_int8(fp32, staging / ONNX_FILE, tokenizer, texts, names, max_length)
        else:
            shutil.move(str(fp32), staging / ONNX_FILE)
        for name in _COPIED:
            if (src / name).exists():
                shutil.copy(src / name, staging / name)
        # The source folder by name: a path on this machine would travel with the model.
        config.onnx = {"exported_from": src.resolve().name, "opset": opset,
                       "quantization": "int8-static" if quantize else None, "calibration_rows": len(texts)}
        config.save(staging)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    return out
