"""Reference tour lengths from elkai (LKH), computed once and cached on disk.

Held-out TSP results are reported as the gap to these lengths. LKH is near
optimal on TSP50/TSP100 but costs tens of milliseconds per instance, so the
lengths are cached per instance (keyed by a hash of its distance matrix, so a
changed instance is never matched to a stale length) in
`$XDG_CACHE_HOME/funsearch/tsp_reference.json` (default `~/.cache/...`).
Host-side only: the sandbox never needs it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# LKH works on integers: distances are scaled so the largest is this big
# (six to seven significant digits), far below LKH's integer range.
_INTEGER_SCALE = 10_000_000
_RUNS = 10

_memory: dict[str, float] = {}


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "funsearch" / "tsp_reference.json"


def instance_key(distances: np.ndarray) -> str:
    """Identifies an instance by its distances (rounded so float noise does not matter)."""
    rounded = np.round(np.asarray(distances, dtype=float), 9)
    digest = hashlib.sha256(rounded.tobytes() + str(rounded.shape).encode()).hexdigest()
    return digest[:24]


def elkai_tour(distances: np.ndarray, runs: int = _RUNS) -> list[int]:
    """A near-optimal tour of the (symmetric) distance matrix, from LKH via elkai."""
    import elkai

    distances = np.asarray(distances, dtype=float)
    if np.allclose(distances, np.round(distances)) and distances.max() < 2**20:
        integers = np.round(distances).astype(np.int64)  # integral already (TSPLIB): exact
    else:
        integers = np.round(distances * (_INTEGER_SCALE / distances.max())).astype(np.int64)
    tour = elkai.DistanceMatrix(integers.tolist()).solve_tsp(runs=runs)
    return [int(city) for city in tour[:-1]]  # elkai repeats the start at the end


def tour_length(tour: list[int], distances: np.ndarray) -> float:
    tour_array = np.asarray(tour, dtype=int)
    return float(np.asarray(distances)[tour_array, np.roll(tour_array, -1)].sum())


def reference_length(distances: np.ndarray) -> float:
    """The LKH tour length of one instance, from the caches or computed (and cached)."""
    return reference_lengths({"_": distances}, lambda d: np.asarray(d))["_"]


def reference_lengths(
    instances: dict[str, Any], to_distances: Callable[[Any], np.ndarray]
) -> dict[str, float]:
    """Reference length per instance id; computes only what neither cache holds."""
    keys = {name: instance_key(to_distances(instance)) for name, instance in instances.items()}
    missing = [name for name, key in keys.items() if key not in _memory]
    if missing:
        _memory.update(_read_cache())
        missing = [name for name in missing if keys[name] not in _memory]
    if missing:
        for name in missing:
            distances = to_distances(instances[name])
            _memory[keys[name]] = tour_length(elkai_tour(distances), distances)
        _write_cache()
    return {name: _memory[key] for name, key in keys.items()}


def _read_cache() -> dict[str, float]:
    try:
        data = json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): float(value) for key, value in data.items()} if isinstance(data, dict) else {}


def _write_cache() -> None:
    """Merges this process's lengths into the cache file (atomically; best effort)."""
    path = cache_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        merged = {**_read_cache(), **_memory}
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(merged, sort_keys=True))
        temporary.replace(path)
    except OSError:
        pass  # a read-only home: the lengths stay cached in this process only
