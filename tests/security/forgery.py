"""Programs that try to forge their score, and the specs they attack (issue 24).

Two specs score `solve(n)`, whose value may be at most n (a larger claim scores
0): SELF_SCORED's run function returns the score itself (no @funsearch.score:
split by default), HOST_SCORED returns the value and scores it on the host (not
split by default). An honest `solve` returning n / 2 scores [1.5, 2.5]; no
program scores more than n, so a score above it is a forgery.

Every attack's `solve` really returns 0.0 (or a false claim, worth 0), after
trying to change what the run function makes of it.
"""

from __future__ import annotations

import textwrap

SELF_SCORED = '''
"""solve(n) may claim at most n; the run function scores it."""
import numpy as np
import funsearch


def clip(value, n):
    """What a claim for n scores: the claim, at most n (a false claim scores 0)."""
    if not isinstance(value, (int, float)):
        raise TypeError(f"solve returned a {type(value).__name__}, not a number")
    return float(value) if value <= n else 0.0


@funsearch.inputs
def train():
    return {"a": 3, "b": 5}


@funsearch.run
def run(n):
    return clip(solve(n), n)


@funsearch.evolve
def solve(n):
    BODY
'''

HOST_SCORED = SELF_SCORED.replace("return clip(solve(n), n)", "return solve(n)").replace(
    "the run function scores it", "the host scores it").replace(
    "@funsearch.evolve", "@funsearch.score\ndef score(n, claimed):\n    return clip(claimed, n)\n"
    "\n\n@funsearch.evolve")

HONEST = "return n / 2"
HONEST_SCORES = [1.5, 2.5]
FORGED = 1e9

# A result frame in the sandbox's own format, as issue 24 wrote it.
_FRAME = f"""
import json
body = json.dumps([{FORGED}, {FORGED}]).encode()
frame = b"O" + len(body).to_bytes(8, "big") + body
"""

ATTACKS = {
    # Issue 24's program: a result frame to every pipe past stderr, then the truth.
    "result_frame": _FRAME + """
import os, stat
for fd in os.listdir("/proc/self/fd"):
    fd = int(fd)
    if fd > 2 and stat.S_ISFIFO(os.fstat(fd).st_mode):
        os.write(fd, frame)
return 0.0
""",
    # ... and then no result of the evaluation's own to follow it.
    "result_frame_then_exit": _FRAME + """
import os
try:
    os.write(3, frame)
finally:
    os._exit(0)
""",
    # An answer of its own on the pipe it answers on, before the real one.
    "answer_frame": f"""
import os, struct
body = b"d" + struct.pack("<d", {FORGED})
try:
    os.write(3, b"R" + len(body).to_bytes(8, "big") + body)
except OSError:
    pass
return 0.0
""",
    "patched_global": f"""
global clip
clip = lambda value, n: {FORGED}
return 0.0
""",
    "patched_builtin": f"""
import builtins
class Float(float):  # still a type, so isinstance(value, (int, float)) works
    __new__ = lambda kind, value=0: {FORGED}
builtins.float = Float
return 1
""",
    "replaced_run_code": f"""
for name in ("run", "clip"):
    globals()[name].__code__ = (lambda *args: {FORGED}).__code__
return 0.0
""",
    # Writes n = 1e9 into every caller's locals, then claims 1e9.
    "caller_locals": f"""
import ctypes, sys
frame = sys._getframe(1)
while frame is not None:
    if "n" in frame.f_locals:
        frame.f_locals["n"] = {FORGED}  # written through from Python 3.13 on
        if hasattr(ctypes.pythonapi, "PyFrame_LocalsToFast"):
            ctypes.pythonapi.PyFrame_LocalsToFast(ctypes.py_object(frame), ctypes.c_int(0))
    frame = frame.f_back
return {FORGED}
""",
    # A float whose comparisons always say "within the limit".
    "float_subclass": f"""
class Claim(float):
    __le__ = __lt__ = lambda self, other: True
    __ge__ = __gt__ = lambda self, other: False
return Claim({FORGED})
""",
    "numpy_subclass": f"""
import numpy as np
class Claim(np.float64):
    __le__ = __lt__ = lambda self, other: True
    __ge__ = __gt__ = lambda self, other: False
return Claim({FORGED})
""",
    # The other processes' memory and pipes, through /proc: refused, so the truth.
    "proc_of_others": _FRAME + """
import os
opened = []
for pid in [name for name in os.listdir("/proc") if name.isdigit()]:
    if int(pid) == os.getpid():
        continue
    for path in [f"/proc/{pid}/mem"] + [f"/proc/{pid}/fd/{fd}" for fd in range(3, 8)]:
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            continue
        opened.append(path)
        try:
            os.write(fd, frame)
        except OSError:
            pass
return 0.0 if not opened else -len(opened)
""",
    # Memory shared with another process, if any is mapped: overwritten.
    "shared_memory": f"""
import ctypes, struct
pattern = struct.pack("<d", {FORGED}) * 512
for line in open("/proc/self/maps"):
    fields = line.split()
    if fields[1].startswith("rw") and fields[1][3] == "s":
        start, end = (int(part, 16) for part in fields[0].split("-"))
        for at in range(start, end, len(pattern)):
            ctypes.memmove(at, pattern, min(len(pattern), end - at))
return 0.0
""",
    # An exception whose words and comparisons are hostile.
    "hostile_exception": """
class Lie(Exception):
    def __str__(self):
        raise SystemExit(0)
    __eq__ = lambda self, other: True
    __hash__ = lambda self: 0
raise Lie()
""",
    "huge_return": "return [0.5] * 10_000_000",
    "deep_return": """
value = 0.0
for _ in range(100_000):
    value = [value]
return value
""",
    "closed_answer_pipe": """
import os
os.close(3)
return 0.0
""",
    "kill_parent": """
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
return 0.0
""",
    "tgkill_parent": """
import ctypes, os
ctypes.CDLL(None).tgkill(os.getppid(), os.getppid(), 9)
return 0.0
""",
    # The result frame where the sandbox reads what the program prints.
    "output_frame": _FRAME + """
import os
os.write(1, frame)
os.write(2, frame)
return 0.0
""",
    "process_vm_writev_parent": """
import ctypes, os
ctypes.CDLL(None).process_vm_writev(os.getppid(), 0, 0, 0, 0, 0)
return 0.0
""",
    # The run function's result pipe, taken from its process through a pidfd.
    "steal_fd": """
import os
os.pidfd_open(os.getppid())
return 0.0
""",
    "ptrace_parent": """
import ctypes, os
ctypes.CDLL(None).ptrace(16, os.getppid(), 0, 0)  # PTRACE_ATTACH
return 0.0
""",
}


def body(attack: str) -> str:
    """The attack's (or HONEST's) body, indented as a function body."""
    return textwrap.indent(textwrap.dedent(ATTACKS.get(attack, attack)).strip(), "    ")


def program(attack: str) -> str:
    """The evolved function `solve` with the attack's body."""
    return "def solve(n):\n" + body(attack) + "\n"


def spec_text(spec: str, attack: str = HONEST) -> str:
    """A spec (SELF_SCORED or HOST_SCORED) whose own `solve` is the attack."""
    return textwrap.dedent(spec).replace("    BODY", body(attack))


def spec_with_baselines(spec: str, initial: str = HONEST) -> str:
    """A spec whose baselines are every attack, each under its own name: `check`
    and `evaluate` run them all beside the program."""
    text = spec_text(spec, initial)
    baselines = "".join(
        f"\n\n@funsearch.baseline\ndef {name}(n):\n{body(name)}\n" for name in ATTACKS)
    return text.replace("\n\n@funsearch.evolve", baselines + "\n\n@funsearch.evolve")


def marked(attack: str) -> str:
    """The attack's body as a sampler's completion, marked with its name (an
    assignment: it survives the search's parsing, so its evaluation can be found)."""
    return f"    _attack = {attack!r}\n" + body(attack) + "\n"
