"""A problem as the user brought it, and the native spec file made of it.

DeepMind's spec files and OpenEvolve's problem folders are not rewritten by
hand: each is made into a native spec file in a folder of the run's own (the
sandbox and the Ray actors import that file), and the best program goes back
into the problem's own format at the end.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

NATIVE, DEEPMIND, OPENEVOLVE = "native", "deepmind", "openevolve"
FORMATS = (NATIVE, DEEPMIND, OPENEVOLVE)


@dataclasses.dataclass(frozen=True)
class Problem:
    """A problem in one of FORMATS.

    Attributes:
      format: which one.
      path: the problem as the user gave it (a file, or an OpenEvolve folder).
      spec_path: the native spec file the sandbox and the Ray actors import
        (path itself for a native spec).
      context: what prompts show above the versions (None: the spec's imports).
      notes: what a run and `check` say about the format (trust, settings
        without a counterpart).
      settings: experiment keys translated from the problem's own settings
        (OpenEvolve's config.yaml), applied where the experiment sets none.
    """

    format: str
    path: Path
    spec_path: Path
    context: str | None = None
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
