"""PyTorch backend: one device, inference mode, float16 on GPUs, asynchronous GPU queueing."""
from __future__ import annotations

import numpy as np

from textarmor.backends import packed as packing
from textarmor.backends import short_attention as attention_kernels


def forward_logits(model, inputs: dict, short_length: int):
    """The model's logits, with the memory-efficient attention kernel for rows of at most ``short_length``
    tokens: cuDNN's flash kernel (PyTorch's first choice on Hopper) wastes most of its tile on short rows
    (attention_kernels.py on an H100: 62.8 vs 74.8 ms per 114,688 tokens at length 14, even at 48)."""
    if inputs["input_ids"].shape[1] <= short_length:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]):
            return model(**inputs).logits
    return model(**inputs).logits


def auto_device() -> str:
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


DTYPES = ("float32", "float16", "bfloat16")


def resolve_device(device: str | None):
    """``torch.device`` for ``device`` (default: :func:`auto_device`), refusing names torch does not know and
    accelerators this machine lacks, in one line that names the fix."""
    import torch

    from textarmor.errors import ParameterError

    if device is None:
        return torch.device(auto_device())
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ParameterError(f"--device must be cpu, cuda, cuda:N or mps; got {device!r}.") from None
    available = {"cpu": True, "cuda": torch.cuda.is_available(),
                 "mps": getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()}
    if not available.get(chosen.type, False):
        raise ParameterError(f"--device {device}: this machine has no such device (usable: "
                             f"{', '.join(k for k, ok in available.items() if ok)}). Leave --device out to pick "
                             "the best one present.")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ParameterError(f"--device {device}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 to "
                             f"cuda:{torch.cuda.device_count() - 1}).")
    return chosen


class TorchBackend:
    """Runs a ``transformers`` sequence classifier.

    On CUDA with Triton, BERT- and RoBERTa-family models in half precision attend with
    :mod:`short_attention`'s kernel on rows of at most 64 tokens (``short_attention=None``, the default;
    ``False`` keeps SDPA everywhere). Where the kernel runs (``packed=None``, the default; ``True`` insists,
    ``False`` pads every pass), passes whose rows all fit it run packed, without padding
    (:mod:`textarmor.backends.packed`): on an H200, roberta-base's passes over the SST-2 train texts took
    0.411 s packed against 0.493 s padded (benchmarks/results/inference.json).

    On CUDA, ``submit`` copies the batch from pinned memory without blocking and queues the forward pass;
    logits stay on the GPU until ``collect``, which moves all of them in one transfer. The CPU is therefore
    free to pad the next batch while the GPU works, and the GPU never waits for a per-batch sync.
    """

    name = "torch"
    # Encoders whose SDPA attention takes a ready 4-D mask unchanged (transformers' mask helpers return a
    # 4-D mask as is). Handing it over skips the helpers' `padding_mask.all()` check, a GPU->CPU sync per batch.
    _PREBUILT_MASK_MODELS = packing.PACKABLE_MODELS  # the BERT/RoBERTa family: the same models
    SHORT_LENGTH = 48  # padded length up to which forward_logits picks the memory-efficient kernel on CUDA

    def __init__(self, model, device: str | None = None, dtype: str | None = None,
                 prebuilt_mask: bool | None = None, compile: bool = False, short_attention: bool | None = None,
                 packed: bool | None = None):
        import torch

        self.device = resolve_device(device)
        if isinstance(dtype, str) and dtype not in DTYPES:
            from textarmor.errors import ParameterError

            raise ParameterError(f"--dtype must be one of {', '.join(DTYPES)}; got {dtype!r}.")
        if dtype is None:
            # float16 rather than bfloat16: the same tensor-core speed, and its 10-bit mantissa keeps
            # probabilities within 0.004 of float32 where bfloat16's 7 bits drift by 0.03 (measured on an
            # H100, benchmarks/results/inference.json). Overflow would show as non-finite logits: see collect.
            dtype = "float16" if self.device.type == "cuda" else "float32"
        self.dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
        self.model = model.to(self.device, dtype=self.dtype).eval()
        # `self.model` stays the plain module (explanations and training tools use it); compiling the small
        # function below traces it, with one graph per side of the short-row branch.
        self._forward = torch.compile(forward_logits, dynamic=True) if compile else forward_logits
        self._short_length = self.SHORT_LENGTH if self.device.type == "cuda" else 0
        self.compiled = bool(compile)
        self._pin = self.device.type == "cuda"
        self.asynchronous = self._pin  # submit returns before the work is done: see busy
        self._ring: list[tuple] = [(None, None)] * 4  # pinned staging buffers, see _to_device
        self._next_slot = 0
        if prebuilt_mask is None:
            prebuilt_mask = self.device.type == "cuda" and self._mask_compatible(model)
        self.prebuilt_mask = prebuilt_mask
        if short_attention is None:  # the kernel reads the prebuilt boolean key mask
            short_attention = prebuilt_mask and attention_kernels.triton_available()
        if short_attention:
            if self.device.type != "cuda" or not attention_kernels.triton_available():
                from textarmor.errors import ParameterError

                raise ParameterError("short_attention=True needs a CUDA device and Triton; leave it at None "
                                     "(used where available) or pass False.")
            self.model.set_attn_implementation(attention_kernels.register())
        elif getattr(getattr(self.model, "config", None), "_attn_implementation", None) == attention_kernels.NAME:
            self.model.set_attn_implementation("sdpa")  # a model an earlier backend switched over
        self.short_attention = bool(short_attention)
        config = getattr(model, "config", None)
        head_dim = getattr(config, "hidden_size", 0) // max(1, getattr(config, "num_attention_heads", 1))
        # without the kernel a packed pass would attend through a (total x total) mask: never on a real pass
        can_pack = (self.short_attention and packing.packable(model)
                    and attention_kernels.kernel_supports(head_dim, self.dtype))
        if packed is None:
            packed = can_pack
        if packed and not can_pack:
            from textarmor.errors import ParameterError

            raise ParameterError("packed=True needs the short-row kernel (a CUDA device and Triton, float16 or "
                                 "bfloat16, heads of 16 to 128 dimensions, a power of two) and a BERT- or "
                                 "RoBERTa-family model; leave it at None (used where it can run) or pass False.")
        # the longest row a packed pass may hold (0: passes are padded); the feeder reads it
        self.packs_up_to = attention_kernels.MAX_LENGTH if packed else 0
        self._packed_forward = (torch.compile(packing.packed_logits, dynamic=True) if packed and compile
                                else packing.packed_logits)

    @classmethod
    def _mask_compatible(cls, model) -> bool:
        config = getattr(model, "config", None)
        return (getattr(config, "model_type", None) in cls._PREBUILT_MASK_MODELS
                and getattr(config, "_attn_implementation", None) in ("sdpa", attention_kernels.NAME))

    def submit(self, encoded: dict[str, np.ndarray]):
        inputs = self._to_device(encoded)
        if self.prebuilt_mask:
            # (batch, 1, 1, keys), True = attend: broadcast over heads and queries by SDPA.
            inputs["attention_mask"] = inputs["attention_mask"].bool()[:, None, None, :]
        with self._grad_mode():
            logits = self._forward(self.model, inputs, self._short_length)
        return self._queued(logits)

    def submit_packed(self, encoded: dict[str, np.ndarray]):
        """Queue one packed pass: a flat encoded slice (``tokenize_pool``'s form) whose rows are at most
        ``packs_up_to`` tokens long; returns its logits as :meth:`submit` does."""
        inputs = self._to_device(packing.host_arrays(self.model.config, encoded))
        with self._grad_mode():
            logits = self._packed_forward(self.model, inputs, packing.length_bucket(int(encoded["lengths"].max())))
        return self._queued(logits)

    def _grad_mode(self):
        import torch

        # Eager runs use inference mode (the cheapest); the compiled function is traced under plain no_grad.
        return torch.no_grad() if self.compiled else torch.inference_mode()

    def _queued(self, logits):
        if self._pin:
            import torch

            self._last_done = torch.cuda.Event()
            self._last_done.record()
        return logits

    def busy(self) -> bool:
        """Whether the device still has submitted work to finish (always ``False`` off CUDA)."""
        done = getattr(self, "_last_done", None)
        return done is not None and not done.query()

    def _to_device(self, encoded: dict[str, np.ndarray]) -> dict:
        """One host-to-device copy per batch, through a ring of reused pinned buffers.

        Pinning a fresh tensor per batch calls the CUDA host allocator every time, which stalls the thread
        that feeds the GPU; a ring of buffers is written in place and only waits for a copy issued
        ``len(ring)`` batches earlier, which bounds how far the host runs ahead of the GPU.
        """
        import torch

        if not self._pin:
            return {key: torch.from_numpy(np.ascontiguousarray(array)).to(self.device)
                    for key, array in encoded.items()}
        total = sum(array.size for array in encoded.values())
        slot = self._next_slot % len(self._ring)
        self._next_slot += 1
        buffer, copied = self._ring[slot]
        if copied is not None:
            copied.synchronize()
        if buffer is None or buffer.numel() < total:
            buffer = torch.empty(max(total, 1 << 16), dtype=torch.int64).pin_memory()
        host = buffer.numpy()
        offset = 0
        for array in encoded.values():
            host[offset:offset + array.size] = array.reshape(-1)
            offset += array.size
        flat = buffer[:total].to(self.device, non_blocking=True)
        copied = torch.cuda.Event()
        copied.record()
        self._ring[slot] = (buffer, copied)
        inputs, offset = {}, 0
        for key, array in encoded.items():
            inputs[key] = flat[offset:offset + array.size].view(array.shape)
            offset += array.size
        return inputs

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
