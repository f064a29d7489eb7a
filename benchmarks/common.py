"""Helpers shared by the benchmarks: reading the shared datasets and appending JSON result rows."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SHARED_DATA = Path(os.environ.get("TEXTARMOR_SHARED_DATA", ROOT.parent / "shared" / "data"))


def read_jsonl(path: Path, limit: int | None = None) -> list[dict]:
    rows = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if limit is not None and len(rows) >= limit:
                    break
    return rows


def write_raw(name: str, result: dict) -> Path:
    """Write ``result`` (a dict with ``rows``) to ``benchmarks/results/raw/NAME``, print its rows and the path."""
    target = RESULTS / "raw" / name
    target.write_text(json.dumps(result, indent=2) + "\n")
    for row in result["rows"]:
        print(row)
    print(target)
    return target


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or 'cpu'} ({os.cpu_count()} cores)"


def write_rows(name: str, rows: list[dict], key: tuple[str, ...]) -> Path:
    """Merge ``rows`` into ``benchmarks/results/NAME.json``, replacing earlier rows with the same ``key``
    fields, so runs on different machines or of different engines accumulate in one file."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    existing = json.loads(path.read_text())["rows"] if path.exists() else []
    new_keys = {tuple(r.get(k) for k in key) for r in rows}
    kept = [r for r in existing if tuple(r.get(k) for k in key) not in new_keys]
    path.write_text(json.dumps({"rows": kept + rows}, indent=2) + "\n")
    return path
