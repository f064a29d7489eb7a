"""Attention for short rows on CUDA: one Triton program per (row, head) holds the whole L x L problem.

PyTorch's fused SDPA kernels tile queries and keys in blocks of 64 or 128, so a batch of 14-token rows
(SST-2's mean) leaves most of every tile empty, and their attention took a third of a roberta-base
forward pass on an H100 (benchmarks/inference/attention_kernels.py). Here a row's queries, keys and values
(at most ``MAX_LENGTH`` tokens of one head) fit in one block: the program reads them once, straight from
the projections' (batch, length, heads, head_dim) layout, and writes the output in the layout the
attention module reshapes next, so neither side needs a transpose copy.

:func:`register` adds the implementation to transformers' ``AttentionInterface`` as
``"textarmor_short"``; for anything it does not serve (longer rows, training, dropout, other masks, no
Triton) it hands the call to transformers' SDPA function unchanged.
"""
from __future__ import annotations

import functools
import math

NAME = "textarmor_short"
MAX_LENGTH = 64  # rows up to this padded length use the kernel; beyond it SDPA's fused kernels fill their tiles
_op = None  # the kernel as a PyTorch custom op, made by register() (outside any compiled region)
_varlen_op = None  # its packed-rows form, made with it


@functools.lru_cache(maxsize=1)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except ImportError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def _kernel():
    import triton
    import triton.language as tl

    @triton.jit
    def short_attention_kernel(q_ptr, k_ptr, v_ptr, mask_ptr, starts_ptr, out_ptr,
                               q_b, q_l, q_h, k_b, k_l, k_h, v_b, v_l, v_h, m_b, o_b, o_l, o_h,
                               heads, length, scale,
                               HAS_MASK: tl.constexpr, VARLEN: tl.constexpr, BLOCK: tl.constexpr,
                               HEAD_DIM: tl.constexpr):
        pid = tl.program_id(0)
        b = pid // heads
        h = pid % heads
        if VARLEN:  # packed rows: row b is tokens starts[b]..starts[b+1] of the one (1, total) sequence
            start = tl.load(starts_ptr + b)
            length = tl.load(starts_ptr + b + 1) - start
            b = 0
        else:
            start = 0
        rows = tl.arange(0, BLOCK)
        dims = tl.arange(0, HEAD_DIM)
        inside = rows < length
        at = start + rows
        q = tl.load(q_ptr + b * q_b + h * q_h + at[:, None] * q_l + dims[None, :], mask=inside[:, None], other=0.0)
        k = tl.load(k_ptr + b * k_b + h * k_h + at[:, None] * k_l + dims[None, :], mask=inside[:, None], other=0.0)
        v = tl.load(v_ptr + b * v_b + h * v_h + at[:, None] * v_l + dims[None, :], mask=inside[:, None], other=0.0)
        keep = inside
        if HAS_MASK:
            keep = keep & (tl.load(mask_ptr + b * m_b + rows, mask=inside, other=0) != 0)
        scores = tl.dot(q, tl.trans(k)) * scale  # float32 accumulation
        scores = tl.where(keep[None, :], scores, float("-inf"))
        scores = scores - tl.max(scores, axis=1)[:, None]
        weights = tl.exp(scores)
        weights = weights / tl.sum(weights, axis=1)[:, None]
        out = tl.dot(weights.to(v.dtype), v)
        tl.store(out_ptr + b * o_b + h * o_h + at[:, None] * o_l + dims[None, :],
                 out.to(out_ptr.dtype.element_ty), mask=inside[:, None])

    return short_attention_kernel


def short_attention(query, key, value, key_mask=None, scale: float | None = None):
    """Attention of ``query``/``key``/``value`` (batch, heads, length, head_dim; any strides with a unit last
    stride) under ``key_mask`` (batch, length; nonzero = attend, or ``None``), returned as a contiguous
    (batch, length, heads, head_dim) tensor."""
    import torch

    batch, heads, length, head_dim = query.shape
    out = torch.empty((batch, length, heads, head_dim), dtype=query.dtype, device=query.device)
    if batch == 0 or length == 0:
        return out
    if key_mask is not None and key_mask.dtype == torch.bool:
        key_mask = key_mask.to(torch.uint8)
    _launch(query, key, value, key_mask, None, out, batch, length, scale)
    return out


def varlen_attention(query, key, value, starts, max_length: int, scale: float | None = None):
    """Attention within each packed row: ``query``/``key``/``value`` are (1, heads, total, head_dim) views of
    rows laid end to end, row ``b`` at tokens ``starts[b]``..``starts[b + 1]`` (int32, rows + 1 entries, the
    longest at most ``max_length``); returned as a contiguous (1, total, heads, head_dim) tensor."""
    import torch

    _, heads, total, head_dim = query.shape
    out = torch.empty((1, total, heads, head_dim), dtype=query.dtype, device=query.device)
    if total == 0:
        return out
    _launch(query, key, value, None, starts, out, len(starts) - 1, max_length, scale)
    return out


def _launch(query, key, value, key_mask, starts, out, rows: int, length: int, scale) -> None:
    """One program per (row, head); ``length`` is the padded length, or the longest packed row."""
    heads, head_dim = query.shape[1], query.shape[3]
    block = max(16, 1 << (length - 1).bit_length())  # tl.dot needs at least 16 rows
    _kernel()[(rows * heads,)](
        query, key, value, key_mask if key_mask is not None else query, starts if starts is not None else query,
        out, query.stride(0), query.stride(2), query.stride(1), key.stride(0), key.stride(2), key.stride(1),
        value.stride(0), value.stride(2), value.stride(1), key_mask.stride(0) if key_mask is not None else 0,
        out.stride(0), out.stride(1), out.stride(2),
        heads, length, scale if scale is not None else 1.0 / math.sqrt(head_dim),
        HAS_MASK=key_mask is not None, VARLEN=starts is not None, BLOCK=block, HEAD_DIM=head_dim,
        num_warps=2 if block <= 32 else 4)


def varlen_reference(query, key, value, starts, scale: float | None = None):
    """:func:`varlen_attention` by SDPA under a block-diagonal mask (memory grows with total²): the path for
    devices without the kernel, and the kernel's reference in tests."""
    import torch

    total = query.shape[2]
    lengths = (starts[1:] - starts[:-1]).long()
    row = torch.repeat_interleave(torch.arange(len(lengths), device=query.device), lengths, output_size=total)
    same_row = row[:, None] == row[None, :]
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=same_row[None, None],
                                                           scale=scale)
    return out.transpose(1, 2).contiguous()


def key_mask_of(attention_mask, batch: int, length: int):
    """The (batch, length) key mask behind ``attention_mask`` when it is a boolean key-padding mask
    ((batch, length) or (batch, 1, 1, length)) or ``None``; ``False`` for any other mask (causal, additive,
    per-query), which the kernel does not serve."""
    import torch

    if attention_mask is None:
        return None
    if attention_mask.dtype != torch.bool:
        return False
    if attention_mask.dim() == 4 and attention_mask.shape[1] == 1 and attention_mask.shape[2] == 1:
        attention_mask = attention_mask[:, 0, 0, :]
    if attention_mask.dim() != 2 or tuple(attention_mask.shape) != (batch, length):
        return False
    return attention_mask


def serves(module, query, key, attention_mask, dropout: float, kwargs: dict) -> bool:
    """Whether :func:`attention_forward` runs the kernel for this call rather than SDPA."""
    batch, _, length, _ = query.shape
    return (_kernel_applies(module, query, key, dropout, kwargs) and length <= MAX_LENGTH
            and key.shape[2] == length and key_mask_of(attention_mask, batch, length) is not False)


def kernel_supports(head_dim: int, dtype) -> bool:
    """Whether the kernel handles heads of ``head_dim`` in ``dtype``: a power of two from 16 to 128, half
    precision only (Triton's float32 products are TF32, and float32 callers want float32 arithmetic)."""
    import torch

    return dtype in (torch.float16, torch.bfloat16) and 16 <= head_dim <= 128 and head_dim & (head_dim - 1) == 0


def _kernel_applies(module, query, key, dropout: float, kwargs: dict) -> bool:
    """The conditions the kernel needs whatever the rows' layout (padded or packed)."""
    return (query.is_cuda and _op is not None and kernel_supports(query.shape[-1], query.dtype)
            and not module.training and dropout == 0.0 and query.shape[1] == key.shape[1]
            and query.stride(-1) == 1 and key.stride(-1) == 1
            and not kwargs.get("output_attentions") and kwargs.get("position_bias") is None
            and kwargs.get("is_causal") is not True)


def attention_forward(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """transformers' attention-function signature: the kernel where :func:`serves` says so, SDPA otherwise.
    Packed rows (``cu_seq_lens_q`` given, as :mod:`textarmor.backends.packed` passes them) attend within
    their row: the kernel where it applies, else SDPA under a block-diagonal mask; never across rows."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    starts = kwargs.get("cu_seq_lens_q")
    if starts is not None:
        longest = int(kwargs["max_length_q"])
        if value.stride(-1) == 1 and longest <= MAX_LENGTH and _kernel_applies(module, query, key, dropout, kwargs):
            return _varlen_op(query, key, value, starts, longest, scaling), None
        return varlen_reference(query, key, value, starts, scaling), None
    if value.stride(-1) == 1 and serves(module, query, key, attention_mask, dropout, kwargs):
        key_mask = key_mask_of(attention_mask, query.shape[0], query.shape[2])
        return _op(query, key, value, key_mask, scaling), None
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)


def _custom_op():
    """The kernel as a PyTorch custom op, so ``torch.compile`` keeps it as one opaque call in its graph."""
    import torch

    # The schema is spelled out: this module's postponed annotations cannot be read as types.
    schema = "(Tensor query, Tensor key, Tensor value, Tensor? key_mask, float? scaling) -> Tensor"

    @torch.library.custom_op("textarmor::short_attention", mutates_args=(), schema=schema)
    def op(query, key, value, key_mask, scaling):
        return short_attention(query, key, value, key_mask, scaling)

    @op.register_fake
    def _(query, key, value, key_mask, scaling):
        batch, heads, length, head_dim = query.shape
        return query.new_empty((batch, length, heads, head_dim))

    return op


def _custom_varlen_op():
    import torch

    schema = "(Tensor query, Tensor key, Tensor value, Tensor starts, int max_length, float? scaling) -> Tensor"

    @torch.library.custom_op("textarmor::varlen_attention", mutates_args=(), schema=schema)
    def op(query, key, value, starts, max_length, scaling):
        return varlen_attention(query, key, value, starts, max_length, scaling)

    @op.register_fake
    def _(query, key, value, starts, max_length, scaling):
        _, heads, total, head_dim = query.shape
        return query.new_empty((1, total, heads, head_dim))

    return op


def register() -> str:
    """Add the implementation to transformers' attention registries (idempotent); returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    global _op, _varlen_op
    if _op is None and triton_available():
        _op, _varlen_op = _custom_op(), _custom_varlen_op()
    AttentionInterface.register(NAME, attention_forward)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
