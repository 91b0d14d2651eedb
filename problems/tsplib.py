"""TSPLIB .tsp files: symmetric instances with EUC_2D, CEIL_2D, ATT or GEO distances.

The distance functions follow TSPLIB 95 (Reinelt) exactly, integer rounding
included, so the known optimal tour lengths are reproduced to the unit. A
loaded instance is a dict the TSP specs accept as an instance:
{"name", "edge_weight_type", "coords": (n, 2) array, "distances": (n, n) array}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EDGE_WEIGHT_TYPES = ("EUC_2D", "CEIL_2D", "ATT", "GEO")


class TsplibError(ValueError):
    """A .tsp file this loader cannot read, with the file (and line) in the message."""


def load(path: str | Path) -> dict:
    """Reads a .tsp file into an instance dict (see the module docstring)."""
    path = Path(path)
    header: dict[str, str] = {}
    coords: list[tuple[float, float]] = []
    in_coords = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if line == "EOF":
            break
        if not line:
            continue
        if in_coords and (line[0].isdigit() or line[0] in "+-."):
            fields = line.split()
            if len(fields) < 3:
                raise TsplibError(f"{path}:{number}: a coordinate line needs 'index x y'")
            coords.append((float(fields[1]), float(fields[2])))
            continue
        in_coords = False
        if line.startswith("NODE_COORD_SECTION"):
            in_coords = True
        elif ":" in line:
            key, value = line.split(":", 1)
            header[key.strip().upper()] = value.strip()
        elif line.endswith("_SECTION"):
            raise TsplibError(f"{path}:{number}: {line} is not supported (only node coordinates)")
    kind = header.get("EDGE_WEIGHT_TYPE", "").upper()
    if kind not in EDGE_WEIGHT_TYPES:
        raise TsplibError(
            f"{path}: EDGE_WEIGHT_TYPE {kind or '(missing)'} is not supported; "
            f"supported: {', '.join(EDGE_WEIGHT_TYPES)}"
        )
    if header.get("TYPE", "TSP").upper() != "TSP":
        raise TsplibError(f"{path}: TYPE {header['TYPE']} is not a symmetric TSP")
    dimension = int(header.get("DIMENSION", len(coords)))
    if len(coords) != dimension:
        raise TsplibError(f"{path}: DIMENSION is {dimension} but {len(coords)} nodes are listed")
    array = np.array(coords, dtype=float)
    return {
        "name": header.get("NAME", path.stem).removesuffix(".tsp"),
        "edge_weight_type": kind,
        "coords": array,
        "distances": distances(array, kind),
    }


def distances(coords: np.ndarray, edge_weight_type: str) -> np.ndarray:
    """The (n, n) TSPLIB distance matrix (integers, as floats)."""
    coords = np.asarray(coords, dtype=float)
    kind = edge_weight_type.upper()
    if kind == "GEO":
        return _geo(coords)
    delta = coords[:, None, :] - coords[None, :, :]
    squared = (delta**2).sum(axis=-1)
    if kind == "EUC_2D":
        return _nint(np.sqrt(squared))
    if kind == "CEIL_2D":
        return np.ceil(np.sqrt(squared))
    if kind == "ATT":
        pseudo = np.sqrt(squared / 10.0)
        rounded = _nint(pseudo)
        return np.where(rounded < pseudo, rounded + 1.0, rounded)
    raise TsplibError(f"EDGE_WEIGHT_TYPE {edge_weight_type} is not supported")


def _nint(values: np.ndarray) -> np.ndarray:
    """TSPLIB's nint: (int)(x + 0.5), i.e. halves round up (numpy's round is to even)."""
    return np.floor(values + 0.5)


def _geo(coords: np.ndarray) -> np.ndarray:
    """Great-circle distances on TSPLIB's idealised earth; coordinates are DDD.MM."""
    pi = 3.141592  # TSPLIB's own constant, not math.pi: the optima depend on it
    degrees = np.trunc(coords)
    minutes = coords - degrees
    radians = pi * (degrees + 5.0 * minutes / 3.0) / 180.0
    latitude, longitude = radians[:, 0], radians[:, 1]
    q1 = np.cos(longitude[:, None] - longitude[None, :])
    q2 = np.cos(latitude[:, None] - latitude[None, :])
    q3 = np.cos(latitude[:, None] + latitude[None, :])
    radius = 6378.388
    inner = np.clip(0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3), -1.0, 1.0)
    result = np.trunc(radius * np.arccos(inner) + 1.0)
    np.fill_diagonal(result, 0.0)  # TSPLIB's formula gives 1 for a node to itself
    return result


def read_solutions(path: str | Path) -> dict[str, int]:
    """Optimal tour lengths from a 'name : length' file (TSPLIB's solutions list)."""
    optima = {}
    for line in Path(path).read_text().splitlines():
        if ":" not in line:
            continue
        name, value = line.split(":", 1)
        fields = value.split()
        if fields and fields[0].isdigit():
            optima[name.strip()] = int(fields[0])
    return optima


def tour_length(tour, distance_matrix: np.ndarray) -> float:
    tour = np.asarray(tour, dtype=int)
    return float(np.asarray(distance_matrix)[tour, np.roll(tour, -1)].sum())

