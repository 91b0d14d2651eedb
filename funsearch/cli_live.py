"""The live view of a run on the command line: one status line, the islands' best.

The line leads with the best score and drops its least useful fields, from
the end, to fit the terminal (80 columns keep the best score, the samples,
the share of valid programs and the time). On a terminal it heads a table of
every island's best, redrawn a few times a second; in a log or a pipe it is
printed every few seconds instead. Warnings (a stalled sampler) are printed
once each, as they come.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from funsearch.progress import Status

PLAIN_SECONDS = 5.0  # between plain lines when the output is not a terminal


def status_fields(status: Status) -> list[str]:
    """The line's fields, most important first."""
    c = status.counters
    best = "-" if status.best_score is None else f"{status.best_score:.6g}"
    return [f"best {best}", f"samples {c.samples} ({status.samples_per_second:.1f}/s)",
            f"valid programs {100 * c.valid_fraction:.0f}%", f"time {_elapsed(status.elapsed)}",
            f"duplicates {c.duplicates}", f"resets {c.resets}", f"registered {c.registered}"]


def status_line(status: Status, width: int | None = None) -> str:
    """The fields that fit in `width` columns (all of them without a width)."""
    line = ""
    for field in status_fields(status):
        longer = f"{line}  {field}" if line else field
        if width is not None and len(longer) > width and line:
            break
        line = longer
    return line


def _elapsed(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.2f}h"


class LiveView:
    """A rich live display on a terminal; plain lines every few seconds otherwise.
    Used as a context manager that gives the function to call with each Status."""

    def __init__(self, console: Console):
        self._console = console
        self._live: Live | None = None
        self._last_line = 0.0
        self._warned = 0  # status.warnings printed so far

    def __enter__(self) -> Callable[[Status], None]:
        if self._console.is_terminal:
            self._live = Live(Text(""), console=self._console, refresh_per_second=4)
            self._live.__enter__()
        return self._show

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _show(self, status: Status) -> None:
        for warning in status.warnings[self._warned:]:  # each once, as it comes
            self._console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        self._warned = len(status.warnings)
        if self._live is not None:
            self._live.update(_display(status, self._console.width))
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_SECONDS or status.stop_reason:
            self._last_line = now
            print(status_line(status), flush=True)


def _display(status: Status, width: int) -> Group:
    table = Table(show_header=True)
    table.add_column("island", justify="right")
    table.add_column("best score", justify="right")
    for island, score in enumerate(status.island_best):
        table.add_row(str(island), f"{score:.6g}")
    return Group(Text(status_line(status, width), no_wrap=True, overflow="ellipsis"), table)
