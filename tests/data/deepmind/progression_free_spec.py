"""Finds large sets of integers in [0, n) that hold no three-term arithmetic progression.

On every iteration, the number with the highest priority that keeps the set
free of progressions is added to it.
"""
import numpy as np


@funsearch.run
def evaluate(n: int) -> int:
  """Returns the size of the progression-free set built for `n`."""
  return len(solve(n))


def solve(n: int) -> list[int]:
  """Builds a progression-free subset of range(n), greedily by priority."""
  priorities = np.array([priority(i, n) for i in range(n)], dtype=float)
  chosen: set[int] = set()
  for candidate in np.argsort(-priorities, kind="stable"):
    c = int(candidate)
    if not any(2 * a - c in chosen or 2 * c - a in chosen
               or (a + c) % 2 == 0 and (a + c) // 2 in chosen for a in chosen):
      chosen.add(c)
  return sorted(chosen)


@funsearch.evolve
def priority(i: int, n: int) -> float:
  """Returns the priority with which `i` joins the set (higher first)."""
  return 0.0
