"""Deployment: ONNX export for fast CPU inference, and packaging a model directory for Hugging Face
Inference Endpoints (``handler.py``), Azure ML managed online endpoints (``score.py``, ``environment.yml``,
``deployment.yml``), a ``Dockerfile`` running ``textarmor serve``, and a model card with Hugging Face
metadata. ONNX export imports torch and onnx only when called."""
from textarmor.deploy.model_card import render_model_card
from textarmor.deploy.onnx_export import export_onnx
from textarmor.deploy.package import TARGETS, PackageResult, package

__all__ = ["TARGETS", "PackageResult", "export_onnx", "package", "render_model_card"]
