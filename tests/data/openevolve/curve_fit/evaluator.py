"""Scores a candidate program by its mean squared error on 21 points (higher
combined_score is better). Stage 1 only checks that predict runs and is finite."""
import importlib.util
import math


def _load(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def evaluate(program_path):
    module = _load(program_path)
    points = [i / 10 for i in range(-10, 11)]
    predictions = module.run_predictions(points)
    errors = [(p - (x * x + 1)) ** 2 for x, p in zip(points, predictions, strict=True)]
    mse = sum(errors) / len(errors)
    if not math.isfinite(mse):
        return {"mse": 1e9, "combined_score": 0.0}
    return {"mse": mse, "combined_score": 1.0 / (1.0 + mse)}


def evaluate_stage1(program_path):
    value = _load(program_path).predict(0.25)
    return {"runs": 1.0 if math.isfinite(value) else 0.0}


def evaluate_stage2(program_path):
    return evaluate(program_path)
