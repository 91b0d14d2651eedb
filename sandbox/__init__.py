"""The isolation boundary for untrusted generated programs.

Host side: `pool.SandboxPool(spec_path, workers, limits, isolation)` with
`submit`/`run(program, function_name, input_set, input_ids) -> Outcome`.

- pool.py        the pool: one thread per worker slot, a shared queue, the next job
                 waiting in each worker;
                 dead or hung workers are replaced and no queued evaluation is lost.
- connection.py  the host's end of one worker process and its JSON protocol, down to
                 the typed Outcome of an answer.
- worker.py      the warm worker (run as a script, standard library only): imports
                 the spec once with a stub `funsearch`, builds input sets on use.
- child.py       one evaluation as the worker sees it: a child forked ahead of its
                 request, started, read, judged (ok / error / memory / crashed /
                 forbidden / timeout / output_limit ...).
- inside.py      ... what runs in the child: jail, the run function, the result frame.
- program.py     a split evaluation: the program in a process of its own, called
                 by the run function through a pipe.
- wire.py        ... the plain data its answers are made of, read defensively.
- streams.py     the worker's reading of a child's result and output under their caps.
- isolation.py   the layers: bubblewrap around workers; rlimits, uid drop and a
                 seccomp filter inside every evaluation.
- forking.py, errors.py   fork, pipes and reaping; an exception in words.

Known limits, by level:
- "bwrap" (the default where bubblewrap works): no network, read-only root, a
  64 MB private /tmp per worker, /root and /home hidden, own pid namespace.
- "process": no file-system view of its own: as root an evaluation still runs
  under its own uid (it cannot write the host's files, and reads only what is
  world-readable), but it can write the host's /tmp and /dev/shm, and imports
  only modules the worker preloaded when the interpreter lives in a private home.
  Not as root, evaluations run under the host's uid (seccomp still refuses new
  processes, exec, sockets and signals to other processes).
- Unsplit, a program runs in the same process as the spec's run function: it
  can change what that function returns (outputs a host score still checks, or
  the score itself where the run function returns it). Split, it runs in a
  process of its own and reaches the run function only through what it returns.
"""
