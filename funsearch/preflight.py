"""What can be checked before a run directory is made: the experiment against its spec.

A run that stops at its start leaves a directory behind that reports must
skip; a run that stops at its end (a held-out set the spec does not have)
has spent its budget for nothing. So everything that needs no sandbox and
no cluster is checked here first: the input sets named exist, every
sampler's settings are what its backend reads, settings that name the
evolved function's parameters name real ones, and keys that do nothing for
their sampler or runtime are errors (or warnings, where a user switching
runtimes would expect them to be ignored). The initial program and the
Ray connection can only fail later; experiment.py logs those as
`start_failed`.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Collection

from funsearch import code, samplers
from funsearch.config import ConfigError, ConfigWarning, ExperimentConfig, SamplerConfig
from funsearch.spec import Specification

# SamplerConfig keys only a language model reads: the mutation proposer has no
# model, no sampling temperature and no server.
_MODEL_KEYS = ("model", "temperature", "top_p", "max_tokens", "mode", "base_url",
               "api_key_env")
# Settings of the mutation proposer that name the evolved function's parameters.
_PARAMETER_SETTINGS = ("index_parameters", "positive_parameters")


def check(config: ExperimentConfig, spec: Specification,
          made: Collection[str] = ()) -> list[str]:
    """Raises one ConfigError naming every key that cannot be used as written;
    returns the warnings, also issued as ConfigWarning. `made`: the samplers
    given as objects (tests), whose config is not what they run."""
    errors = _input_set_errors(config, spec)
    for sampler in config.samplers:
        if sampler.name not in made:
            errors += _sampler_errors(sampler, spec)
    if errors:
        raise ConfigError("\n".join(errors))
    found = _runtime_warnings(config)
    for message in found:
        warnings.warn(message, ConfigWarning, stacklevel=2)
    return found


def _input_set_errors(config: ExperimentConfig, spec: Specification) -> list[str]:
    """Every input set named exists (the message lists those the spec has)."""
    known = ", ".join(spec.input_sets) or "none"
    return [f"key '{key}': the spec {spec.path.name} has no input set '{name}' (it has: {known})"
            for key, name in [("problem.inputs", config.problem.inputs),
                              *(("problem.holdout", name) for name in config.problem.holdout)]
            if name not in spec.input_sets]


def _sampler_errors(sampler: SamplerConfig, spec: Specification) -> list[str]:
    try:
        settings = samplers.check_settings(sampler)
    except ConfigError as error:
        return [str(error)]
    if sampler.backend != "mutation":
        return []
    defaults = SamplerConfig(name=sampler.name)
    errors = [f"key 'samplers.{sampler.name}.{key}': does not apply to backend 'mutation' (the "
              "offline proposer has no model; its options are in [samplers.settings])"
              for key in _MODEL_KEYS if getattr(sampler, key) != getattr(defaults, key)]
    parameters = _parameters(spec)
    for key in _PARAMETER_SETTINGS:
        unknown = [name for name in getattr(settings, key) if name not in parameters]
        if unknown:
            errors.append(
                f"key 'samplers.{sampler.name}.settings.{key}': "
                f"{', '.join(map(repr, unknown))} is not a parameter of '{spec.evolve_name}' "
                f"in {spec.path.name} (its parameters: {', '.join(parameters) or 'none'})")
    return errors


def _parameters(spec: Specification) -> list[str]:
    function = code.find_function(code.parse(spec.initial_program), spec.evolve_name)
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
             *(a for a in (arguments.vararg, arguments.kwarg) if a is not None)]
    return [argument.arg for argument in every if isinstance(argument, ast.arg)]


def _runtime_warnings(config: ExperimentConfig) -> list[str]:
    """Ray settings that an inline run ignores: a warning, not an error, since
    `--runtime inline` on a cluster's experiment is how a spec is debugged."""
    if config.runtime.kind != "inline":
        return []
    ignored = [f"samplers.{s.name}.replicas = {s.replicas}" for s in config.samplers
               if s.replicas > 1]
    if config.evaluator.actors > 1:
        ignored.append(f"evaluator.actors = {config.evaluator.actors}")
    if config.runtime.address:
        ignored.append(f"runtime.address = {config.runtime.address!r}")
    if not ignored:
        return []
    return [f"runtime 'inline' runs in one process: {', '.join(ignored)} "
            "take effect only with runtime 'ray'"]
