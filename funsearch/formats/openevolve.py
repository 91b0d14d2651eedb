"""OpenEvolve problem folders, run as they are.

A folder holds `initial_program.py`, whose code between `# EVOLVE-BLOCK-START`
and `# EVOLVE-BLOCK-END` is what evolves (a whole block: several functions,
constants, imports), `evaluator.py` with `evaluate(program_path) -> metrics`
(optionally a cascade `evaluate_stage1/2/3`) and an optional `config.yaml`.

funsearch evolves one function, so the block becomes the body of a function
`evolve_block` that is never called: prompts show the versions of the block
in it and the offline proposer mutates it like any body; a candidate is
initial_program.py with the body written back as the block. The native spec
(openevolve_spec.py's text) runs the folder's evaluator on that file in the
sandbox.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

from funsearch import code, spec
from funsearch.formats import openevolve_config
from funsearch.formats.openevolve_spec import block_text
from funsearch.formats.problem import OPENEVOLVE, Problem

START, END = "# EVOLVE-BLOCK-START", "# EVOLVE-BLOCK-END"
FUNCTION = "evolve_block"
SPEC_FILE = "funsearch_spec.py"
PROGRAM = "initial_program.py"
_TEMPLATE = Path(__file__).with_name("openevolve_spec.py")
_SKIPPED = shutil.ignore_patterns("openevolve_output*", "__pycache__", ".git", "*.pyc")
TRUST_NOTE = ("OpenEvolve evaluator: evaluate() runs the candidate itself, in the same "
              "sandboxed process, so the score is computed within the candidate's reach "
              "(a candidate can forge its metrics)")


def looks_like(folder: Path) -> bool:
    return (folder / PROGRAM).is_file() and (folder / "evaluator.py").is_file()


def prepare(folder: Path, out: Path, metric: str = "") -> Problem:
    """The native spec of an OpenEvolve folder, in `out` beside a copy of the folder."""
    if not looks_like(folder):
        raise spec.SpecError(f"{folder}: an OpenEvolve problem folder holds {PROGRAM} "
                             "and evaluator.py")
    source = (folder / PROGRAM).read_text()
    prefix, block, suffix, indent = split(source, folder / PROGRAM)
    translated = openevolve_config.translate(folder / "config.yaml")
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(folder, out, ignore=_SKIPPED)
    settings = {"prefix": prefix, "suffix": suffix, "indent": indent, "metric": metric,
                **translated.runner}
    (out / "openevolve.json").write_text(json.dumps(settings, indent=1))
    function = as_function(block, folder / PROGRAM)
    (out / SPEC_FILE).write_text(_TEMPLATE.read_text() + "\n\n@funsearch.evolve\n" + function)
    return Problem(OPENEVOLVE, folder, out / SPEC_FILE, context=_context(prefix, suffix),
                   notes=(TRUST_NOTE, *translated.notes), settings=translated.settings)


def split(source: str, path: Path) -> tuple[str, str, str, str]:
    """(text up to the start marker's line, the block, text from the end
    marker's line, the block's indentation)."""
    lines = source.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise spec.SpecError(f"{path}: needs one '{START}' line and one '{END}' line after "
                             f"it (found {len(starts)} and {len(ends)})")
    start, end = starts[0], ends[0]
    block = "".join(lines[start + 1 : end])
    indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
    return "".join(lines[: start + 1]), textwrap.dedent(block), "".join(lines[end:]), indent


def as_function(block: str, path: Path) -> str:
    """The block as the body of `evolve_block`, as a program is written."""
    doc = ('"""The EVOLVE-BLOCK of initial_program.py: module-level code (functions, '
           'constants) between the lines before and after it."""')
    text = f"def {FUNCTION}():\n    {doc}\n" + textwrap.indent(block.strip("\n") + "\n", "    ")
    try:
        return code.rename(text, FUNCTION, FUNCTION)  # unparsed, as parsing makes programs
    except code.CodeError as error:
        raise spec.SpecError(f"{path}: the evolve block does not parse as code: {error}") from None


def write_back(problem: Problem, program: str) -> tuple[str, str]:
    """(file name, text): initial_program.py with the best block."""
    source = (problem.path / PROGRAM).read_text()
    prefix, _, suffix, indent = split(source, problem.path / PROGRAM)
    return "best_program.py", prefix + textwrap.indent(block_text(program), indent) + suffix


def _context(prefix: str, suffix: str) -> str:
    """What a prompt shows above the versions: the program around the block."""
    after = textwrap.indent(suffix.strip("\n"), "# ", lambda line: True)
    return (prefix.rstrip() + "\n# (the block: the body of evolve_block below, "
            "written at module level)\n# After the block, initial_program.py goes on:\n"
            + after + "\n")
