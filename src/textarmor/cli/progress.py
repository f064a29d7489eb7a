"""A live progress bar for attacks that shows the running attack success rate."""
from __future__ import annotations

from typing import Self

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from textarmor.attacks.report import AttackResult


class AttackProgress:
    """Context manager; pass ``start`` and ``advance`` as the ``on_start`` / ``on_result`` callbacks."""

    def __init__(self):
        self._bar = Progress(TextColumn("attacking"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), transient=False)
        self._task = None
        self.counts = {"successful": 0, "failed": 0, "skipped": 0}

    def __enter__(self) -> Self:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._bar.__exit__(*exc)

    def start(self, total: int, done: list[AttackResult]) -> None:
        """Show ``total`` examples, the ``done`` ones (from a resumed run) already counted."""
        for result in done:
            self.counts[result.status] += 1
        self._task = self._bar.add_task("attack", total=total, completed=len(done), rate=self._rate())

    def advance(self, result: AttackResult) -> None:
        self.counts[result.status] += 1
        self._bar.update(self._task, advance=1, rate=self._rate())

    def _rate(self) -> str:
        attacked = self.counts["successful"] + self.counts["failed"]
        return f"success {100 * self.counts['successful'] / attacked:.1f}%" if attacked else ""
