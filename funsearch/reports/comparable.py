"""Which runs can be compared, and what each run's settings were.

Scores of different problems mean different things (a TSP tour length is not
a bin-packing gap), so `compare` puts only runs of one problem side by side:
the same spec and training inputs, by content hash (spec.problem_hash, in
each run's `run_start`). A run that never started, or has no sample yet, has
no score at any budget and is left out, with the reason. A run's setting is
read from its config.json, and a key the config leaves out (a sampler
setting never written) is read as its default from the models that gave the
run its defaults, so `--by` treats "not written" and "written as the default"
alike.
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined, to_jsonable_python

from funsearch import dotted
from funsearch.config import ExperimentConfig, SamplerConfig
from funsearch.config_errors import model_in
from funsearch.reports.rundata import RunData

ABSENT = "<absent>"  # a key a run's config does not have, and no model gives a default for
_MISSING = object()


def excluded_reason(run: RunData) -> str | None:
    """Why a run has nothing to compare, or None."""
    if run.failed_start is not None:
        return f"failed to start: {run.failed_start}"
    if run.start is None:
        return "not started (no run_start in its log)"
    if run.samples == 0:
        return "no samples yet"
    return None


def split_started(runs: Iterable[RunData]) -> tuple[list[RunData], list[tuple[RunData, str]]]:
    """(the runs with samples to compare, [(run, why it is left out)])."""
    kept, left_out = [], []
    for run in runs:
        reason = excluded_reason(run)
        if reason is None:
            kept.append(run)
        else:
            left_out.append((run, reason))
    return kept, left_out


def problem_of(run: RunData) -> str:
    """What the run's scores are scores of: the spec and training inputs by
    content hash (spec.problem_hash), or in older logs the spec's path and
    the input set's name."""
    if run.start is not None and run.start.problem:
        return str(run.start.problem)
    return f"{_spec(run)} on '{_inputs(run)}'"


def problem_label(run: RunData) -> str:
    """The problem in words: the spec file's (or folder's) name and the training set."""
    return f"{Path(_spec(run)).name} on '{_inputs(run)}'"


def _spec(run: RunData) -> str:
    return str((run.start.spec if run.start else None)
               or (run.config.get("problem") or {}).get("spec", "?"))


def _inputs(run: RunData) -> str:
    return str((run.start.inputs if run.start else None)
               or (run.config.get("problem") or {}).get("inputs", "train"))


def by_problem(runs: list[RunData]) -> dict[str, list[RunData]]:
    """The runs of each problem, the most runs first, labelled in words (the
    spec's name and training set; the hash too where two problems share those)."""
    problems: dict[str, list[RunData]] = {}
    for run in runs:
        problems.setdefault(problem_of(run), []).append(run)
    labels = [problem_label(members[0]) for members in problems.values()]
    labelled = {}
    for (key, members), label in zip(problems.items(), labels, strict=True):
        if labels.count(label) > 1:
            label = f"{label} (problem {key[:8]})"
        labelled[label] = members
    return dict(sorted(labelled.items(), key=lambda item: -len(item[1])))


def setting(config: dict[str, Any], key: str) -> Any:
    """The run's value at a dotted key, its default where the config leaves it
    out, or ABSENT where nothing gives one."""
    try:
        return dotted.get(config, key)
    except KeyError:
        pass
    value = _default(config, key.split("."))
    return ABSENT if value is _MISSING else value


def require_key(configs: list[dict[str, Any]], key: str) -> None:
    """A KeyError naming the key, and keys like it, if no run has it (nor a default)."""
    if any(setting(config, key) != ABSENT for config in configs):
        return
    known = sorted(set().union(*(flatten(effective(config)) for config in configs)))
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else \
        f" (top-level keys: {', '.join(sorted(set().union(*configs)))})"
    raise KeyError(f"config has no key '{key}' in any run{hint}")


def _default(config: dict[str, Any], parts: list[str]) -> Any:
    """The default the config models give the key (settings: the backend's)."""
    model: type[BaseModel] | None = ExperimentConfig
    node: Any = config
    for index, part in enumerate(parts):
        if isinstance(node, list):
            if not (part.isdigit() and int(part) < len(node)):
                return _MISSING
            node = node[int(part)]
            continue
        if part == "settings" and model is SamplerConfig and isinstance(node, dict):
            model = _settings_model(str(node.get("backend", "mutation")))
            node = node.get("settings") or {}
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return _MISSING
        node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            return _field_default(field, parts[index + 1:])
        model = model_in(field.annotation)
    return _MISSING


def _field_default(field: Any, rest: list[str]) -> Any:
    if field.default is PydanticUndefined and field.default_factory is None:
        return _MISSING
    value = to_jsonable_python(field.get_default(call_default_factory=True))
    try:
        return dotted.get(value, ".".join(rest)) if rest else value
    except KeyError:
        return _MISSING


def _settings_model(backend: str) -> type[BaseModel] | None:
    from funsearch import samplers

    try:
        return samplers.settings_model(backend)
    except Exception:  # an unknown backend, or one whose module cannot load here
        return None


def effective(config: dict[str, Any]) -> dict[str, Any]:
    """The config with each sampler's settings completed by their defaults, so
    a setting written as its default does not differ from one left out."""
    config = copy.deepcopy(config)
    for sampler in config.get("samplers") or []:
        if not isinstance(sampler, dict):
            continue
        model = _settings_model(str(sampler.get("backend", "mutation")))
        if model is None:
            continue
        defaults = {name: to_jsonable_python(field.get_default(call_default_factory=True))
                    for name, field in model.model_fields.items() if not field.is_required()}
        sampler["settings"] = _merged(defaults, sampler.get("settings") or {})
    return config


def _merged(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in given.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            value = _merged(merged[key], value)
        merged[key] = value
    return merged


def flatten(config: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value; a list of plain values is one value (holdout sets)."""
    if isinstance(config, dict) and config:
        items = config.items()
    elif isinstance(config, list) and any(isinstance(item, (dict, list)) for item in config):
        items = ((str(index), value) for index, value in enumerate(config))
    else:
        return {prefix: config}
    flat: dict[str, Any] = {}
    for key, value in items:
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def label(value: Any) -> str:
    """A setting's value as a group label."""
    return value if isinstance(value, str) else json.dumps(value)
