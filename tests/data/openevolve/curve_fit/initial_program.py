"""Predicts y = x * x + 1 on [-1, 1]: an OpenEvolve-style problem written for
funsearch's tests. The block holds a constant and two functions."""
import math

# EVOLVE-BLOCK-START
SCALE = 0.5


def feature(x):
    """A transform of the input."""
    return x


def predict(x):
    """The prediction for `x`."""
    return SCALE * feature(x)
# EVOLVE-BLOCK-END


def run_predictions(points):
    """What the evaluator calls: one prediction per point."""
    return [float(predict(x)) for x in points]


if __name__ == "__main__":
    print(run_predictions([0.0, 0.5, 1.0]), math.pi)
