"""A Hugging Face hub cache laid out as huggingface_hub lays it, so that hub ids resolve offline through the real
lookup code (``HF_HUB_OFFLINE=1``, ``HF_HUB_CACHE`` pointing here)::

    models--ORG--NAME/blobs/<sha256>                    file contents
    models--ORG--NAME/snapshots/<commit>/<file>         links to ../../blobs/<sha256>
    models--ORG--NAME/refs/main                         the commit
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def add_repo(cache: Path, repo_id: str, folder: Path, commit: str = "1" * 40) -> Path:
    """Put every file of ``folder`` into ``cache`` as revision ``main`` of ``repo_id``; returns the snapshot."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / path.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
