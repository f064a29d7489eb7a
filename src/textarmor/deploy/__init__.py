"""Deployment: ONNX export for fast CPU inference."""
from textarmor.deploy.onnx_export import export_onnx

__all__ = ["export_onnx"]
