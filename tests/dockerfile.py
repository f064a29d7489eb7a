"""Read a package's Dockerfile so its RUN and CMD lines can run here without docker: each path the image
would have (``COPY src dest``) maps back to the file in the package folder."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Dockerfile:
    folder: Path  # the build context
    env: dict[str, str] = field(default_factory=dict)
    copies: dict[str, Path] = field(default_factory=dict)  # image path -> context path
    runs: list[list[str]] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # instruction names in order

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        parsed = cls(folder=path.parent)
        for line in path.read_text().splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            instruction, _, rest = line.strip().partition(" ")
            parsed.steps.append(instruction)
            if instruction == "ENV":
                parsed.env.update(item.split("=", 1) for item in shlex.split(rest))
            elif instruction == "COPY":
                *sources, dest = shlex.split(rest)
                for source in sources:
                    into = dest + Path(source).name if dest.endswith("/") else dest
                    parsed.copies[into.rstrip("/") or "/"] = (parsed.folder / source).resolve()
            elif instruction == "RUN":
                parsed.runs.append(shlex.split(rest))
            elif instruction == "CMD":
                parsed.cmd = json.loads(rest)
        return parsed

    def local(self, args: list[str]) -> list[str]:
        """``args`` with every image path that a COPY filled replaced by the package file it came from."""
        return [str(self.copies[arg]) if arg in self.copies else arg for arg in args]

    def pip_install(self) -> list[str]:
        """The arguments of the ``RUN pip install ...`` line (after ``install``), mapped to the package."""
        line = next(run for run in self.runs if run[:2] == ["pip", "install"])
        return self.local(line[2:line.index("&&")] if "&&" in line else line[2:])
