"""PyTorch backend: one device, inference mode, bf16 on GPUs that support it, asynchronous GPU queueing."""
from __future__ import annotations

import numpy as np


def auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


class TorchBackend:
    """Runs a ``transformers`` sequence classifier.

    On CUDA, ``submit`` copies the batch from pinned memory without blocking and queues the forward pass;
    logits stay on the GPU until ``collect``, which moves all of them in one transfer. The CPU is therefore
    free to pad the next batch while the GPU works, and the GPU never waits for a per-batch sync.
    """

    name = "torch"

    def __init__(self, model, device: str | None = None, dtype: str | None = None):
        import torch

        self.device = torch.device(device or auto_device())
        if dtype is None:
            dtype = "bfloat16" if self.device.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = model.to(self.device, dtype=self.dtype).eval()
        self._pin = self.device.type == "cuda"

    def submit(self, encoded: dict[str, np.ndarray]):
        import torch

        inputs = {}
        for key, array in encoded.items():
            tensor = torch.from_numpy(array)
            if self._pin:
                tensor = tensor.pin_memory()
            inputs[key] = tensor.to(self.device, non_blocking=True)
        with torch.inference_mode():
            return self.model(**inputs).logits

    def collect(self, handles: list) -> list[np.ndarray]:
        import torch

        if not handles:
            return []
        sizes = [h.shape[0] for h in handles]
        merged = torch.cat(handles).float().cpu().numpy()
        return np.split(merged, np.cumsum(sizes)[:-1])

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        return self.collect([self.submit(encoded)])[0]
