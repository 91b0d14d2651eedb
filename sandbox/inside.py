"""Inside one evaluation's child: jail, request, the run function over the inputs, result.

The child reports on its own result pipe (fd 3): one tag byte, the length of
what follows (8 bytes, big-endian), then the data -- b"O" + the outputs as
JSON, b"E" + an exception, b"M" + a memory error, b"I" + why the outputs are
not acceptable, b"P" + the wait status of the program's own process when a
split evaluation's program died (program.py).

Imported by child.py as a sibling module: standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import errors
import forking
import isolation
import program as program_module
from program import ProgramProcess
from streams import LENGTH


def child_main(runner: Any, jail: isolation.Jail, pipes: list, parent: int) -> None:
    """Jails itself, waits for the request, evaluates, reports. Never returns.

    A split evaluation forks the program's process first: the jail's filter
    refuses new processes."""
    code = 0
    try:
        os.setpgid(0, 0)
        os.dup2(pipes[0][0], 0)
        os.dup2(pipes[2][1], 1)
        os.dup2(pipes[3][1], 2)
        os.dup2(pipes[1][1], 3)
        os.closerange(4, forking.MAX_FD)
        os.umask(0o077)
        program = ProgramProcess(runner.module, jail, runner.limits, runner.lean) \
            if runner.split else None
        jail.enter(parent)
        _warm_up()
        if program is not None:
            program_module.warm_up()
        request = json.loads(forking.read_all(0))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    except BaseException as error:
        try:
            _report(tagged(b"E", f"sandbox setup failed: {errors.describe(error)}".encode()))
        finally:
            os._exit(70)
    try:
        result = _evaluate(runner, request, program)
        sys.stdout.flush()
        sys.stderr.flush()
        _report(result)
    except BaseException:
        code = 71
    os._exit(code)


def _warm_up() -> None:
    """Runs the machinery of an evaluation once on nothing, while waiting: the
    memory pages it writes are copied (fork's copy-on-write) before the request."""
    exec(compile("def _f(x):\n    return [x, 1.5]\n", "<warm-up>", "exec"), {})
    json.loads(json.dumps([{"a": [0, 1.5, "x", None]}]))


def _evaluate(runner: Any, request: dict[str, Any], program: ProgramProcess | None) -> bytes:
    module = runner.module
    instances = runner.inputs[request["input_set"]]
    input_id = None
    try:
        failure = _define(module, request, program)
        if failure is not None:
            return failure
        run = getattr(module, runner.run_name)
        outputs = []
        for input_id in request["input_ids"]:
            outputs.append(run(instances[input_id]))
    except MemoryError:
        if program is not None and program.broken is not None:
            return _framed(program.broken)
        where = "" if input_id is None else f" [input {input_id}]"
        return tagged(b"M", f"MemoryError: out of memory{where}".encode())
    except BaseException as error:
        if program is not None and program.broken is not None:
            return _framed(program.broken)
        where = "" if input_id is None else f" [input {input_id}]"
        return tagged(b"E", (_words(error, module, program) + where).encode())
    if program is not None and program.broken is not None:  # the run function swallowed it
        return _framed(program.broken)
    return _outputs(outputs, runner.limits["result_bytes"])


def _define(module: Any, request: dict[str, Any], program: ProgramProcess | None) -> bytes | None:
    """The program's function under its name, for the run function to call:
    itself, or (split) a stub calling it in its own process. None, or the
    error frame saying why not."""
    name = request["function"]
    if program is not None:
        failure = program.load(request["program"], name)
        if failure is not None:
            return _framed(failure)
        module.__dict__[name] = program.stub(name)
        return None
    module.__dict__.pop(name, None)  # the spec's own version must not stand in
    exec(compile(request["program"], "<program>", "exec"), module.__dict__)
    if not callable(module.__dict__.get(name)):
        return tagged(b"E", f"the program does not define '{name}'".encode())
    return None


def _words(error: BaseException, module: Any, program: ProgramProcess | None) -> str:
    """The error's description; a split program's own exception as its process
    described it, with the program's line."""
    if program is not None and program.raised is not None and program.raised[0] is error:
        return program.raised[1]
    return errors.describe(error, getattr(module, "__file__", None))


def _outputs(outputs: list, limit: int) -> bytes:
    try:
        text = json.dumps(outputs, default=_to_json)
    except MemoryError:
        return tagged(b"M", b"MemoryError while encoding the outputs")
    except BaseException as error:
        return tagged(b"I", f"outputs are not JSON: {errors.describe(error)}".encode())
    data = text.encode()  # ASCII: json.dumps escapes the rest
    if len(data) > limit:
        return tagged(b"I", f"result of {len(data)} bytes is larger than the limit".encode())
    return tagged(b"O", data)


def _to_json(value: Any) -> Any:
    """numpy values as plain lists and numbers; anything else is not JSON."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if isinstance(value, numpy.ndarray):
            return value.tolist()
        if isinstance(value, numpy.generic):
            return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def tagged(tag: bytes, data: bytes) -> bytes:
    return tag + len(data).to_bytes(LENGTH, "big") + data


def _framed(message: bytes) -> bytes:
    """A tag byte and its data (program.py's words) as a result frame."""
    return tagged(message[:1], message[1:])


def _report(message: bytes) -> None:
    forking.write_all(3, message)
    os.close(3)
