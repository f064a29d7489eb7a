"""Where one end-to-end ``predict_proba`` call's time goes: slice waits, submits and the device's forward passes.

The classifier's submit and slice iterator are wrapped for one call. On CUDA each submit is bracketed by
two events on the stream, so the device's busy and idle spans come from the device's own clock; off CUDA
the submit's host span stands in. The summary says how long the device sat idle before its first pass,
between passes and after its last, and what the feeding thread did meanwhile (waiting for a slice,
submitting, or neither: stacking, copying results).

    from benchmarks.inference.timeline import trace_call
    summary, forwards = trace_call(clf, texts)
"""
from __future__ import annotations

import time

import numpy as np


def trace_call(clf, texts: list[str]) -> tuple[dict, list[dict]]:
    """Run ``clf.predict_proba(texts)`` once with timing hooks; ``(summary, per-forward rows)``, seconds."""
    import torch

    backend = clf.backend
    cuda = torch.cuda.is_available() and str(getattr(backend, "device", "cpu")).startswith("cuda")
    forwards: list[dict] = []
    waits: list[tuple[float, float]] = []

    def event():
        if not cuda:
            return None
        mark = torch.cuda.Event(enable_timing=True)
        mark.record()
        return mark

    def traced(send, shape):
        def wrapper(arrays: dict):
            started, before = time.perf_counter(), event()
            handle = send(arrays)
            after = event()
            forwards.append({"host_start": started, "host_end": time.perf_counter(), "events": (before, after),
                             **shape(arrays)})
            return handle
        return wrapper

    def padded_shape(arrays: dict) -> dict:
        mask = arrays["attention_mask"]
        return {"rows": int(mask.shape[0]), "width": int(mask.shape[1]), "tokens": int(mask.sum())}

    def packed_shape(encoded: dict) -> dict:  # no padding: rows x width counts real tokens only
        lengths = encoded["lengths"]
        return {"rows": len(lengths), "width": int(lengths.max()), "tokens": int(lengths.sum()), "packed": True}

    hooks = {"submit": traced(backend.submit, padded_shape)}
    if hasattr(backend, "submit_packed"):
        hooks["submit_packed"] = traced(backend.submit_packed, packed_shape)

    def timed_slices(generator_method):
        def wrapper(*args, **kwargs):
            inner = generator_method(*args, **kwargs)
            try:
                while True:
                    entered = time.perf_counter()
                    try:
                        item = next(inner)
                    except StopIteration:
                        return
                    waits.append((entered, time.perf_counter()))
                    yield item
            finally:
                inner.close()
        return wrapper

    patched = {"_prepared_in_processes": clf._prepared_in_processes, "_prepared_in_threads": clf._prepared_in_threads}
    if cuda:
        torch.cuda.synchronize()
    base = event()
    start = time.perf_counter()
    for name, hook in hooks.items():
        setattr(backend, name, hook)
    for name, method in patched.items():
        setattr(clf, name, timed_slices(method))
    try:
        clf.predict_proba(texts)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    finally:
        for name in hooks:
            delattr(backend, name)
        for name in patched:
            delattr(clf, name)
    return summarize(forwards, waits, base, start, wall, len(texts))


def summarize(forwards: list[dict], waits: list[tuple[float, float]], base, start: float, wall: float,
              n: int) -> tuple[dict, list[dict]]:
    rows = []
    for item in forwards:
        before, after = item.pop("events")
        if before is not None:  # the device's clock, from the call's start event
            gpu_start, gpu_end = base.elapsed_time(before) / 1000, base.elapsed_time(after) / 1000
        else:
            gpu_start, gpu_end = item["host_start"] - start, item["host_end"] - start
        rows.append({**item, "host_start": round(item["host_start"] - start, 5),
                     "host_end": round(item["host_end"] - start, 5),
                     "gpu_start": round(gpu_start, 5), "gpu_end": round(gpu_end, 5)})
    gaps = [max(0.0, b["gpu_start"] - a["gpu_end"]) for a, b in zip(rows, rows[1:])]
    for row, gap in zip(rows[1:], gaps):
        row["gap_before"] = round(gap, 5)
    busy = sum(r["gpu_end"] - r["gpu_start"] for r in rows)
    submitting = sum(r["host_end"] - r["host_start"] for r in rows)
    # a slice wait can hold a submit (an idle device is sent what is stacked): that part is not waiting
    waited = sum((b - a) - sum(max(0.0, min(b, r["host_end"] + start) - max(a, r["host_start"] + start))
                               for r in rows) for a, b in waits)
    widths = np.array([r["width"] for r in rows]) if rows else np.zeros(1)
    summary = {
        "n": n, "wall_s": round(wall, 4), "forwards": len(rows), "slices": len(waits),
        "device_busy_s": round(busy, 4),
        "device_idle_before_first_s": round(rows[0]["gpu_start"], 4) if rows else None,
        "device_idle_between_s": round(sum(gaps), 4),
        "device_idle_after_last_s": round(wall - rows[-1]["gpu_end"], 4) if rows else None,
        "host_waiting_for_slices_s": round(waited, 4),
        "host_submitting_s": round(submitting, 4),
        "first_slice_s": round(waits[0][1] - start, 4) if waits else None,
        "last_slice_s": round(waits[-1][1] - start, 4) if waits else None,
        "padding_fraction": round(1 - sum(r["tokens"] for r in rows) / max(1, sum(
            r["tokens"] if r.get("packed") else r["rows"] * r["width"] for r in rows)), 4),
        "packed_forwards": sum(1 for r in rows if r.get("packed")),
        "rows_per_forward_mean": round(float(np.mean([r["rows"] for r in rows])), 1) if rows else 0,
        "width_range": [int(widths.min()), int(widths.max())],
    }
    return summary, rows
