"""A wheel of the textarmor that is running, so that a package installs it where no index holds it.

An installed distribution has no source tree to build from (a regular install), or one that may have moved
on since it was installed (an editable install), so the wheel is assembled from what runs: the files of the
imported ``textarmor`` package and the installed distribution's metadata, laid out as PEP 427 (the binary
distribution format) says: the package, and ``textarmor-VERSION.dist-info/`` with ``METADATA``, ``WHEEL``,
``entry_points.txt`` and a ``RECORD`` of every file's sha256 and size.

Its version is the installed one with a local label naming the code, ``0.1.0+1a2b3c4d5e6f``: the shipped
requirement pins it, and no public index can serve that version in its place (PyPI refuses local versions).
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from textarmor.errors import ParameterError

DISTRIBUTION = "textarmor"
# Byte-for-byte reproducible archives: every entry gets this timestamp (zip's epoch is 1980).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    version: str  # what the requirement pins, e.g. "0.1.0+1a2b3c4d5e6f"


def package_files(root: Path) -> list[Path]:
    """The files of an imported package folder that a wheel carries: sources and package data, no bytecode
    caches or hidden files."""
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        if path.suffix in (".pyc", ".pyo"):
            continue
        if path.suffix in (".so", ".pyd", ".dylib"):
            raise ParameterError(f"The installed textarmor holds a compiled file ({rel}), so it cannot ship as a "
                                 "pure-Python wheel. Pass --requirement with a pip line that installs textarmor.")
        files.append(path)
    return files


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_installed_wheel(out_dir: str | Path) -> BuiltWheel:
    """Write ``textarmor-VERSION-py3-none-any.whl`` into ``out_dir`` from the running textarmor."""
    import textarmor

    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ParameterError("textarmor runs from source without being installed, so its metadata (dependencies, "
                             "entry points) is unknown: pip install it (e.g. pip install -e .), or pass "
                             "--requirement with a pip line that installs textarmor.") from None
    root = Path(textarmor.__file__).resolve().parent
    files = package_files(root)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    version = f"{dist.version.split('+')[0]}+{digest.hexdigest()[:12]}"
    info = f"{DISTRIBUTION}-{version}.dist-info"
    metadata = re.sub(r"(?m)^Version: .*$", f"Version: {version}", dist.read_text("METADATA") or "", count=1)
    members: list[tuple[str, bytes]] = [(f"{DISTRIBUTION}/{p.relative_to(root).as_posix()}", p.read_bytes())
                                        for p in files]
    members.append((f"{info}/METADATA", metadata.encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        members.append((f"{info}/entry_points.txt", entry_points.encode()))
    members.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: textarmor package\nRoot-Is-Purelib: true\n"
                                     b"Tag: py3-none-any\n"))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in members) + f"{info}/RECORD,,\n"
    members.append((f"{info}/RECORD", record.encode()))

    out = Path(out_dir) / f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return BuiltWheel(path=out, version=version)
