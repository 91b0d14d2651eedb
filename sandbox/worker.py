"""A warm sandbox worker: imports the spec once, forks one jailed child per evaluation.

Started by the pool as `python worker.py SPEC CONFIG_JSON` (inside bubblewrap
where available). It imports nothing from funsearch/: a stub `funsearch`
module provides the decorators, so the worker needs nothing installed beyond
what the spec itself imports. The evaluations themselves are in child.py.

Protocol, over the worker's original stdin/stdout (the worker moves them aside
first, so anything the spec prints goes to stderr instead):
- host -> worker: one JSON line per evaluation request
  {"program", "function", "input_set", "input_ids"};
- worker -> host: one JSON header line {"status", "detail", "duration",
  "stdout", "stderr", "inputs", "payload": n} followed by n raw bytes, the
  outputs as JSON text exactly as the child wrote them (the host parses them).
  The first message after start is a hello: {"ready": true, ...} or
  {"ready": false, "error": ...}.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import random
import shutil
import sys
import types
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import child  # noqa: E402  (sibling files: the worker is run as a script)
import errors  # noqa: E402
import forking  # noqa: E402
import isolation  # noqa: E402

sys.path.pop(0)

# Imported once by the worker, so an evaluation that imports them pays nothing,
# and finds them even where its uid cannot read the interpreter's files
# (process isolation under a private home, e.g. pyenv in /root).
PRELOAD = (
    "array", "bisect", "collections", "copy", "dataclasses", "decimal", "enum", "fractions",
    "functools", "heapq", "itertools", "math", "numbers", "operator", "random", "re",
    "statistics", "string", "tempfile", "typing",
)  # fmt: skip


class _StubFunsearch(types.ModuleType):
    """`funsearch` as a spec sees it in the sandbox: `@funsearch.<role>` marks the
    function with its role, as funsearch/__init__.py does, for any role name,
    so a role added there needs no change here."""

    ROLE_ATTRIBUTE = "__funsearch_role__"

    def __getattr__(self, role: str):
        if role.startswith("_"):
            raise AttributeError(role)

        def mark(function):
            setattr(function, self.ROLE_ATTRIBUTE, role)
            return function

        return mark


def _import_spec(path: str) -> types.ModuleType:
    sys.modules["funsearch"] = _StubFunsearch("funsearch")
    spec = importlib.util.spec_from_file_location("funsearch_spec", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # DeepMind's spec files use `@funsearch.run` without importing funsearch.
    module.funsearch = sys.modules["funsearch"]  # type: ignore[attr-defined]
    sys.modules["funsearch_spec"] = module
    spec.loader.exec_module(module)
    return module


def _roles(module: types.ModuleType) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in vars(module).items():
        role = getattr(value, "__funsearch_role__", None)
        if isinstance(role, str) and callable(value):
            found.setdefault(role, []).append(name)
    return found


def _one_thread() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _as_named(instances: Any, name: str) -> dict[str, Any]:
    """Input ids as funsearch/spec.py `_as_named` makes them."""
    if isinstance(instances, dict):
        return {str(key): value for key, value in instances.items()}
    if isinstance(instances, (list, tuple)):
        return {str(index): value for index, value in enumerate(instances)}
    kind = type(instances).__name__
    raise TypeError(f"input set '{name}' must return a dict or a list, not {kind}")


class Worker:
    """The spec, its input sets (built on first use, then kept) and the jail."""

    def __init__(self, spec_path: str, config: dict[str, Any]) -> None:
        self.limits = config["limits"]
        self.uid: int | None = config.get("uid")
        # Split: the program runs in a process of its own, apart from the run function.
        self.split = bool(config.get("split"))
        # One folder for this worker's evaluations, its cwd, HOME and TMPDIR:
        # set here once, so a child inherits them and pays nothing.
        self.folder: str = config["folder"]
        shutil.rmtree(self.folder, ignore_errors=True)  # a replaced worker's leftovers
        self._make_folder()
        os.chdir(self.folder)
        os.environ.update({"HOME": self.folder, "TMPDIR": self.folder})
        for name in PRELOAD:
            importlib.import_module(name)
        self.module = _import_spec(spec_path)
        roles = _roles(self.module)
        if not roles.get("run"):
            raise LookupError(f"{spec_path}: no function is marked @funsearch.run")
        self.run_name = roles["run"][0]
        self.input_functions = roles.get("inputs", [])
        self.inputs: dict[str, dict[str, Any]] = {}
        bpf, self.seccomp = isolation.seccomp_program()
        self.jail = isolation.Jail(limits=self.limits, uid=self.uid, bpf=bpf)
        self.jail.worker_setup()
        self._freeze()
        self.spare: child.Child | None = None  # forked for the next evaluation
        self.spare_inputs: frozenset[str] = frozenset()
        self.used: child.Child | None = None  # the last evaluation's, until reaped

    def evaluate(self, request: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        try:
            name = request["input_set"]
            instances = self.input_set(name)
            ids = request.get("input_ids")
            ids = list(instances) if ids is None else [str(i) for i in ids]
            missing = [i for i in ids if i not in instances]
            if missing:
                raise LookupError(f"input set '{name}' has no input {', '.join(missing[:5])}")
        except Exception as error:
            return child._header("error", errors.describe(error)), b""
        if name not in self.spare_inputs or self.spare is None or not self.spare.alive():
            self.discard_spare()  # forked before the input set existed, or gone
            self.fork_spare()
        evaluation, self.spare = self.spare, None
        assert evaluation is not None
        self.used = evaluation
        evaluation.start({**request, "input_ids": ids})
        self.fork_spare()  # the next evaluation's child, while this one runs
        header, payload = evaluation.result(self.limits)
        header["inputs"] = len(ids)
        return header, payload

    def retire(self) -> None:
        """After an evaluation: stop its child now, reap it later (settle)."""
        if self.used is not None:
            self.used.kill()

    def settle(self) -> None:
        """Before an evaluation: the last child is reaped and its files are gone."""
        if self.used is not None:
            self.used.finish()
            self.used = None
            self._clear_folder()

    def fork_spare(self) -> None:
        """The next evaluation's child, forked and jailed before it is needed."""
        if self.spare is None:
            self.spare = child.Child(self, self.jail, lean=self.lean)
            self.spare_inputs = frozenset(self.inputs)

    def discard_spare(self) -> None:
        if self.spare is not None:
            self.spare.finish()
            self.spare = None

    def input_set(self, name: str) -> dict[str, Any]:
        if name not in self.inputs:
            if name not in self.input_functions:
                known = ", ".join(self.input_functions) or "none"
                raise LookupError(f"no input set '{name}' (the spec has: {known})")
            self.inputs[name] = _as_named(getattr(self.module, name)(), name)
            self._freeze()
        return self.inputs[name]

    def _freeze(self) -> None:
        """What exists now is kept for the worker's life: out of the collector's
        sight, so children do not copy its pages by walking it.

        Also the point where every later child starts from the same state: the
        random generators are seeded (a program that draws random numbers scores
        the same in every evaluation, on every worker), and the worker checks it
        still has one thread, which the lean fork needs."""
        random.seed(0)  # as child.py does after an os.fork
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(0)
        gc.collect()
        gc.freeze()
        self.lean = _one_thread()

    def _make_folder(self) -> None:
        os.mkdir(self.folder, 0o700)
        if self.uid is not None:
            os.chown(self.folder, self.uid, self.uid)

    def _clear_folder(self) -> None:
        """Leaves the folder empty and private again for the next evaluation.

        Its contents go, not the folder: the spare child already has it as cwd."""
        if os.stat(self.folder).st_mode & 0o7777 != 0o700:
            os.chmod(self.folder, 0o700)  # first: the program may have locked it
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    try:
                        os.unlink(entry.path)
                    except OSError:
                        pass


class _Channel:
    """The worker's end of the protocol, on file descriptors of its own."""

    def __init__(self) -> None:
        self.incoming = os.fdopen(os.dup(0), "rb")
        self.outgoing = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)  # whatever the spec prints must not reach the protocol

    def receive(self) -> dict[str, Any] | None:
        line = self.incoming.readline()
        return json.loads(line) if line else None

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        forking.write_all(self.outgoing, json.dumps(header).encode() + b"\n" + payload)


def main() -> None:
    channel = _Channel()
    spec_path, config = sys.argv[1], json.loads(sys.argv[2])
    try:
        worker = Worker(spec_path, config)
    except BaseException as error:
        channel.send({"ready": False, "error": errors.describe(error)})
        raise SystemExit(1) from None
    channel.send({"ready": True, "pid": os.getpid(), "uid": worker.uid, "seccomp": worker.seccomp})
    while True:
        worker.fork_spare()  # while the host is busy with the last answer
        request = channel.receive()
        if request is None:
            break
        worker.settle()
        header, payload = worker.evaluate(request)
        channel.send(header, payload)
        worker.retire()
    worker.settle()
    worker.discard_spare()


if __name__ == "__main__":
    main()
