"""Forward time of a roberta-base-shaped encoder per SDPA attention kernel, over sequence lengths.

Short texts (SST-2 averages 13 tokens) leave most of a flash-attention tile empty; this measures which
kernel serves which padded length, so the torch backend can choose per batch.

    python benchmarks/inference/attention_kernels.py --tokenizer DIR [--tokens 114688]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoModelForSequenceClassification, RobertaConfig

from textarmor.backends import short_attention

KERNELS = {"default": None, "cudnn": [SDPBackend.CUDNN_ATTENTION], "efficient": [SDPBackend.EFFICIENT_ATTENTION],
           "math": [SDPBackend.MATH], "textarmor_short": None}  # the last: textarmor's Triton kernel (<= 64 tokens)


def forward_ms(model, ids, mask, kernel, repeats=5) -> float:
    def once():
        with torch.inference_mode():
            return model(input_ids=ids, attention_mask=mask).logits
    context = sdpa_kernel(KERNELS[kernel]) if KERNELS[kernel] else contextlib.nullcontext()
    model.set_attn_implementation(short_attention.register() if kernel == "textarmor_short" else "sdpa")
    with context:
        once()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            once()
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=114688, help="rows × length per batch")
    parser.add_argument("--lengths", type=int, nargs="*", default=[8, 14, 24, 32, 48, 64, 96, 128, 256, 512])
    args = parser.parse_args()
    config = RobertaConfig(num_labels=2, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5)
    model = AutoModelForSequenceClassification.from_config(config).to("cuda", torch.float16).eval()
    for length in args.lengths:
        rows = max(1, args.tokens // length)
        ids = torch.randint(5, 1000, (rows, length), device="cuda")
        lengths = torch.randint(max(1, length - 4), length + 1, (rows,), device="cuda")
        mask = (torch.arange(length, device="cuda") < lengths[:, None])[:, None, None, :]
        result = {"length": length, "rows": rows}
        for kernel in KERNELS:
            if kernel == "textarmor_short" and length > short_attention.MAX_LENGTH:
                continue
            try:
                result[kernel] = round(forward_ms(model, ids, mask, kernel), 2)
            except RuntimeError as error:  # a kernel that does not take this input
                result[kernel] = str(error)[:60]
        if "textarmor_short" in result and isinstance(result["efficient"], float):
            # the kernel's output against SDPA's on one batch: the same probabilities to fp16 precision
            with torch.inference_mode():
                model.set_attn_implementation("sdpa")
                ref = model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1)
                model.set_attn_implementation(short_attention.register())
                out = model(input_ids=ids, attention_mask=mask).logits.float().softmax(-1)
            result["max_abs_prob_diff_vs_sdpa"] = float((out - ref).abs().max())
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
