from __future__ import annotations

from pathlib import Path

import typer

from textarmor.cli import app


@app.command("export")
def export(
    model_dir: str = typer.Argument(..., help="Model directory to export."),
    out: Path = typer.Option(..., "--out", help="Directory for the exported model."),
    onnx: bool = typer.Option(True, "--onnx/--no-onnx", help="Export to ONNX (the only format for now)."),
    quantize: str | None = typer.Option(None, "--quantize", help="int8: static quantization of the linear "
                                           "layers, calibrated on sample texts."),
    calibration_data: str | None = typer.Option(None, "--calibration-data", help="Texts to calibrate int8 on "
                                                   "(default: the model's recorded training data)."),
    calibration_rows: int = typer.Option(256, "--calibration-rows"),
    opset: int = typer.Option(17, "--opset", min=11, max=20, help="ONNX opset, 11 to 20."),
    overwrite: bool = typer.Option(False, "--overwrite"),
) -> None:
    """Export a model for fast CPU inference with ONNX Runtime.

    The output is a model directory: `textarmor predict`, `evaluate` and `serve` use it directly
    (the ONNX backend is chosen automatically).

    Examples:

        textarmor export runs/sst2 --onnx --out runs/sst2-onnx

        textarmor export runs/sst2 --onnx --quantize int8 --calibration-data dev.jsonl --out runs/sst2-int8
    """
    from textarmor.deploy import export_onnx
    from textarmor.errors import ParameterError

    if not onnx:
        raise ParameterError("Only ONNX export exists; drop --no-onnx.")
    path = export_onnx(model_dir, out, quantize=quantize, calibration_data=calibration_data,
                       calibration_rows=calibration_rows, opset=opset, overwrite=overwrite)
    typer.echo(f"exported to {path}")
