"""Forward passes over packed rows: a pass's rows laid end to end as one sequence, with no padding.

Batches of short texts are padded to their longest row, and on SST-2 the passes cut from the feeder's pool
still carry 14-20% padding tokens, which every matmul of the model pays for. Packed, the matmuls see only
real tokens; attention keeps to each row through ``cu_seq_lens_q`` (transformers passes attention
keyword arguments down to the attention function, here :func:`short_attention.attention_forward`), position
ids restart at every row, and each row's first token is gathered for the classification head.

Only BERT- and RoBERTa-family classifiers, whose heads read the first token, are packed.
"""
from __future__ import annotations

import numpy as np

PACKABLE_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}
_POSITIONS_AFTER_PADDING = {"roberta", "xlm-roberta", "camembert"}  # positions start at padding_idx + 1


def packable(model) -> bool:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None) in PACKABLE_MODELS


def host_arrays(model_config, encoded: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A flat encoded pass (``tokenize_pool``'s form) as the arrays :func:`packed_logits` reads, int64:
    ``input_ids``, ``position_ids``, ``token_type_ids`` (all of the total length) and ``starts`` (rows + 1)."""
    lengths = encoded["lengths"].astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    first = model_config.pad_token_id + 1 if model_config.model_type in _POSITIONS_AFTER_PADDING else 0
    positions = np.arange(starts[-1]) - np.repeat(starts[:-1], lengths) + first
    types = encoded.get("token_type_ids")
    return {"input_ids": encoded["input_ids"].astype(np.int64), "position_ids": positions,
            "token_type_ids": types.astype(np.int64) if types is not None else np.zeros(starts[-1], np.int64),
            "starts": starts}


def length_bucket(longest: int) -> int:
    """The ``max_length`` a packed pass with this longest row is run with: the kernel's tile (a power of two,
    at least 16), which is all the kernel takes from it. Passing the tile instead of the row keeps
    ``torch.compile`` to one graph per tile: it specialises on the integer, and eight distinct longest rows
    used up its recompile limit on an H200 (later passes then ran uncompiled)."""
    return max(16, 1 << (max(1, longest) - 1).bit_length())


def packed_logits(model, inputs: dict, max_length: int):
    """Logits (rows, labels) of the packed pass ``inputs`` (:func:`host_arrays`' keys, as device tensors);
    ``max_length`` bounds its longest row (:func:`length_bucket`)."""
    import torch

    starts = inputs["starts"].to(torch.int32)
    base = model.base_model
    hidden = base(input_ids=inputs["input_ids"][None], position_ids=inputs["position_ids"][None],
                  token_type_ids=inputs["token_type_ids"][None], cu_seq_lens_q=starts, cu_seq_lens_k=starts,
                  max_length_q=max_length, max_length_k=max_length).last_hidden_state
    first = hidden[0, inputs["starts"][:-1]][:, None, :]  # each row's first token, (rows, 1, hidden)
    if model.config.model_type == "bert":
        return model.classifier(model.dropout(base.pooler(first)))
    return model.classifier(first)
