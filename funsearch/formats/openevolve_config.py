"""OpenEvolve's config.yaml, translated where funsearch has a counterpart.

Settings with a counterpart become experiment keys (applied when the folder is
run without an experiment file of its own); the others are listed, so a user
sees at the start what is not honoured. The cascade settings go to the
sandbox's side (openevolve_spec.py).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from funsearch import spec

# OpenEvolve's defaults for its cascade.
CASCADE_THRESHOLDS = [0.5, 0.75, 0.9]
_SAMPLER_KEYS = {"temperature": "temperature", "top_p": "top_p", "max_tokens": "max_tokens"}


@dataclasses.dataclass(frozen=True)
class Translated:
    """settings: experiment keys; runner: the sandbox side's cascade settings;
    notes: what has no counterpart (and what was translated), in words."""

    settings: dict[str, Any]
    runner: dict[str, Any]
    notes: tuple[str, ...]


def translate(path: Path) -> Translated:
    """config.yaml at `path` (none there: nothing to translate)."""
    runner = {"cascade": True, "thresholds": CASCADE_THRESHOLDS}
    if not path.is_file():
        return Translated({}, runner, ())
    import yaml  # only here: most runs have no config.yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise spec.SpecError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise spec.SpecError(f"{path}: expected a mapping at the top level")
    settings: dict[str, Any] = {}
    ignored: list[str] = []
    for key, value in data.items():
        if key == "max_iterations":
            merge(settings, {"scheduler": {"budget": {"samples": int(value)}}})
        elif key == "random_seed" and value is not None:
            settings["seed"] = int(value)
        elif key == "llm" and isinstance(value, dict):
            merge(settings, _llm(value, ignored))
        elif key == "database" and isinstance(value, dict):
            merge(settings, _database(value, ignored))
        elif key == "evaluator" and isinstance(value, dict):
            merge(settings, _evaluator(value, runner, ignored))
        else:
            ignored.append(key)
    notes = ()
    if ignored:
        notes = (f"config.yaml: no counterpart here, not used: {', '.join(ignored)}",)
    return Translated(settings, runner, notes)


def merge(into: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new` merged into `into`, table by table (new wins); returns `into`."""
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def _llm(llm: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    """Each model an `openai` chat sampler; weights a `fixed` policy."""
    samplers, weights = [], {}
    for model in llm.get("models") or []:
        name = str(model.get("name", "model"))
        sampler = {"name": name, "backend": "openai", "mode": "chat", "model": name,
                   "base_url": model.get("api_base") or llm.get("api_base") or "",
                   "api_key_env": "OPENAI_API_KEY"}
        for key, ours in _SAMPLER_KEYS.items():
            value = model.get(key, llm.get(key))
            if value is not None:
                sampler[ours] = value
        samplers.append(sampler)
        weights[name] = float(model.get("weight", 1.0))
    used = {"models", "api_base", "api_key", *_SAMPLER_KEYS}
    ignored += [f"llm.{key}" for key in llm if key not in used]
    if not samplers:
        return {}
    return {"samplers": samplers, "scheduler": {"policy": "fixed", "weights": weights}}


def _database(database: dict[str, Any], ignored: list[str]) -> dict[str, Any]:
    ignored += [f"database.{key}" for key in database if key != "num_islands"]
    if "num_islands" not in database:
        return {}
    return {"database": {"islands": int(database["num_islands"])}}


def _evaluator(evaluator: dict[str, Any], runner: dict[str, Any],
               ignored: list[str]) -> dict[str, Any]:
    ours: dict[str, Any] = {}
    for key, value in evaluator.items():
        if key == "timeout":
            ours["timeout"] = float(value)
        elif key == "parallel_evaluations":
            ours["workers"] = int(value)
        elif key == "cascade_evaluation":
            runner["cascade"] = bool(value)
        elif key == "cascade_thresholds":
            runner["thresholds"] = [float(v) for v in value]
        else:
            ignored.append(f"evaluator.{key}")
    return {"evaluator": ours} if ours else {}
