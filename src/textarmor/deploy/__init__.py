"""Packaging a model directory for deployment: Hugging Face Inference Endpoints (``handler.py``),
Azure ML managed online endpoints (``score.py``, ``environment.yml``, ``deployment.yml``), a
``Dockerfile`` running ``textarmor serve``, and a model card with Hugging Face metadata."""
from textarmor.deploy.model_card import render_model_card
from textarmor.deploy.package import TARGETS, PackageResult, package

__all__ = ["TARGETS", "PackageResult", "package", "render_model_card"]
