"""FunSearch-style evolutionary program search.

Importing this package is cheap on purpose: problem specs do `import funsearch`
for the decorators below, and a spec is loaded on the host and inside every
sandbox worker.
"""

from collections.abc import Callable
from typing import Any, TypeVar

__version__ = "0.1.0"

F = TypeVar("F", bound=Callable[..., Any])

# The attribute a decorator sets on a spec function; spec.py reads it.
ROLE_ATTRIBUTE = "__funsearch_role__"


def _marker(role: str) -> Callable[[F], F]:
    def mark(function: F) -> F:
        setattr(function, ROLE_ATTRIBUTE, role)
        return function

    mark.__name__ = role
    mark.__doc__ = f"Marks the spec function that plays the role '{role}'."
    return mark


evolve = _marker("evolve")  # the function the search rewrites
run = _marker("run")  # runs in the sandbox on one input, calls the evolved function
score = _marker("score")  # runs on the host: (instance, output) -> float
inputs = _marker("inputs")  # a named input set: () -> dict[str, instance] | list
baseline = _marker("baseline")  # a reference implementation of the evolved function
# Host-side only: (input_set, scores per input) -> {name: value} a report shows
# beside the mean score, e.g. the gap to a reference tour in percent.
summary = _marker("summary")
# Host-side only: (instance, output) -> {name: value} logged with the evaluation
# (an OpenEvolve evaluator's metrics).
metrics = _marker("metrics")
# Host-side only: () -> the stages of a cascade (funsearch/cascades.py), cheapest
# first, e.g. [{"inputs": 4, "rule": "top", "threshold": 0.5}].
cascade = _marker("cascade")
