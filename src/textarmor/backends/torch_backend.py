"""PyTorch backend: one device, inference mode, float16 on GPUs, asynchronous GPU queueing."""
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
    # Encoders whose SDPA attention takes a ready 4-D mask unchanged (transformers' mask helpers return a
    # 4-D mask as is). Handing it over skips the helpers' `padding_mask.all()` check, a GPU->CPU sync per batch.
    _PREBUILT_MASK_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}

    def __init__(self, model, device: str | None = None, dtype: str | None = None,
                 prebuilt_mask: bool | None = None):
        import torch

        self.device = torch.device(device or auto_device())
        if dtype is None:
            # float16 rather than bfloat16: the same tensor-core speed, and its 10-bit mantissa keeps
            # probabilities within 0.004 of float32 where bfloat16's 7 bits drift by 0.03 (measured on an
            # H100, benchmarks/results/inference.json). Overflow would show as non-finite logits: see collect.
            dtype = "float16" if self.device.type == "cuda" else "float32"
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = model.to(self.device, dtype=self.dtype).eval()
        self._pin = self.device.type == "cuda"
        if prebuilt_mask is None:
            prebuilt_mask = self.device.type == "cuda" and self._mask_compatible(model)
        self.prebuilt_mask = prebuilt_mask

    @classmethod
    def _mask_compatible(cls, model) -> bool:
        config = getattr(model, "config", None)
        return (getattr(config, "model_type", None) in cls._PREBUILT_MASK_MODELS
                and getattr(config, "_attn_implementation", None) == "sdpa")

    def submit(self, encoded: dict[str, np.ndarray]):
        import torch

        inputs = {}
        if self.prebuilt_mask:
            # (batch, 1, 1, keys), True = attend: broadcast over heads and queries by SDPA.
            encoded = dict(encoded, attention_mask=encoded["attention_mask"].astype(bool)[:, None, None, :])
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
        if not np.isfinite(merged).all():
            from textarmor.errors import ParameterError

            raise ParameterError(f"The model produced non-finite scores in {self.dtype}; this model overflows "
                                 "that precision. Load it with dtype='bfloat16' or 'float32'.")
        return np.split(merged, np.cumsum(sizes)[:-1])

    def __call__(self, encoded: dict[str, np.ndarray]) -> np.ndarray:
        return self.collect([self.submit(encoded)])[0]
