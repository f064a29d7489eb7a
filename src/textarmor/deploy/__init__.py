"""Deployment: ONNX export for fast CPU inference, and packaging a model directory (safetensors or ONNX) for
Hugging Face Inference Endpoints (``handler.py``), Azure ML managed online endpoints (``score.py``,
``deployment.yml``, an environment folder), a ``Dockerfile`` running ``textarmor serve``, and a model card
with Hugging Face metadata; a package carries a wheel of textarmor, so it installs from its own files.
ONNX export imports torch and onnx only when called."""
from textarmor.deploy.model_card import render_model_card
from textarmor.deploy.model_files import check_model_folder
from textarmor.deploy.onnx_export import export_onnx
from textarmor.deploy.package import TARGETS, PackageResult, package, upload

__all__ = ["TARGETS", "PackageResult", "check_model_folder", "export_onnx", "package", "render_model_card",
           "upload"]
