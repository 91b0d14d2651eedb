"""What a running child sends back, read by the worker under caps: its result
(fd 3) and what it prints (stdout, stderr).

Each pipe has a cap. A result past its cap is invalid; output past its cap
ends the evaluation at once (status "output_limit"), so a program that prints
without end is stopped when it passes the cap, not read and thrown away until
the deadline. The first bytes it printed are kept for the reason.

Imported by child.py as a sibling module: standard library only.
"""

from __future__ import annotations

import os
import select
from typing import Any

LENGTH = 8  # bytes of the length field after a result's tag byte
READ = 1 << 20
SHOWN_CHARS = 120  # of a flood, in the reason
NAMES = ("result", "stdout", "stderr")


def whole(result: bytearray | bytes) -> bool:
    """A result is whole when its length field matches what followed it."""
    return (
        len(result) > LENGTH
        and int.from_bytes(result[1 : 1 + LENGTH], "big") == len(result) - 1 - LENGTH
    )


def overfull(result: bytearray | bytes) -> bool:
    """A result followed by more bytes: someone else wrote to the pipe too."""
    return (
        len(result) > LENGTH
        and int.from_bytes(result[1 : 1 + LENGTH], "big") < len(result) - 1 - LENGTH
    )


class Streams:
    """The child's three pipes (result, stdout, stderr) and what came of them."""

    def __init__(self, readers: list[int], limits: dict[str, Any]) -> None:
        output_cap = limits["output_bytes"]
        self.caps = [limits["result_bytes"] + 1 + LENGTH, output_cap, output_cap]
        self.data = [bytearray(), bytearray(), bytearray()]
        self.truncated = [False, False, False]
        self.readers = readers
        self.open = {fd: index for index, fd in enumerate(readers)}  # not yet at their end

    def take(self, fd: int) -> bool:
        """One read from a readable pipe; False (and the pipe forgotten) at its end."""
        chunk = os.read(fd, READ)
        if not chunk:
            del self.open[fd]
            return False
        self._keep(self.open[fd], chunk)
        return True

    def drain(self) -> None:
        """What is in the pipes now, without waiting (a few reads at most each):
        a child flushes its output before it writes its result, so all it
        printed is in the pipes by then."""
        for fd in list(self.open):
            for _ in range(8):
                if not select.select([fd], [], [], 0)[0] or not self.take(fd):
                    break

    @property
    def result(self) -> bytes:
        return bytes(self.data[0])

    def result_ended(self) -> bool:
        """The result pipe is closed: nothing more can come after what is in."""
        return self.readers[0] not in self.open

    def result_whole(self) -> bool:
        return whole(self.data[0])

    def result_too_big(self) -> bool:
        return self.truncated[0]

    def flooded(self) -> int | None:
        """The index of the first output stream past its cap, if any."""
        return next((index for index in (1, 2) if self.truncated[index]), None)

    def flood_detail(self, index: int) -> str:
        """Why the evaluation was stopped, with the start of what it printed."""
        start = self.data[index][: SHOWN_CHARS * 4].decode("utf-8", errors="replace")
        return (
            f"printed more than the {self.caps[index]}-byte limit to {NAMES[index]}; "
            f"it began: {start[:SHOWN_CHARS]!r}"
        )

    def printed(self) -> list[str]:
        """stdout and stderr as text, marked where they were cut."""
        return [self._text(index) for index in (1, 2)]

    def _text(self, index: int) -> str:
        text = self.data[index].decode("utf-8", errors="replace")
        return text + "\n[... truncated]" if self.truncated[index] else text

    def _keep(self, index: int, chunk: bytes) -> None:
        room = self.caps[index] - len(self.data[index])
        if room > 0:
            self.data[index] += chunk[:room]
        if len(chunk) > room:
            self.truncated[index] = True
