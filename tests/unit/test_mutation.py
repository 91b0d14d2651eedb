"""The offline genetic-programming proposer: what it writes, and how.

Every sample goes through parsing.to_program as in the engine, and the
programs that come out are run on small real inputs (a distance matrix, an
array of bin capacities), so "parses" and "runs" are checked, not assumed.
"""

import ast
import math
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from funsearch import code
from funsearch.config import ConfigError, SamplerConfig
from funsearch.parsing import parse, to_program
from funsearch.prompt import build_query
from funsearch.samplers import make_sampler
from funsearch.samplers.mutation.numeric import Modules
from funsearch.samplers.mutation.ops import OPERATORS
from funsearch.samplers.mutation.proposer import MutationSampler
from funsearch.samplers.mutation.settings import MutationSettings, size_limit
from funsearch.samplers.mutation.sites import NUM, analyse
from funsearch.samplers.mutation.trees import node_count

ROOT = Path(__file__).resolve().parents[2]
NUMPY = "import numpy as np\n"

TSP = '''def select_next_node(current_node: int, destination_node: int, unvisited_nodes: np.ndarray, distance_matrix: np.ndarray) -> int:
    """Returns the next node to visit."""
    distances = distance_matrix[current_node, unvisited_nodes]
    return unvisited_nodes[np.argmin(distances)]
'''

TSP_LOOKAHEAD = '''def select_next_node(current_node: int, destination_node: int, unvisited_nodes: np.ndarray, distance_matrix: np.ndarray) -> int:
    """Returns the next node to visit."""
    distances = distance_matrix[current_node, unvisited_nodes]
    to_destination = distance_matrix[unvisited_nodes, destination_node]
    scores = distances - 0.3 * to_destination
    if len(unvisited_nodes) > 3:
        scores = scores + 0.1 * np.mean(distances)
    return unvisited_nodes[np.argmin(scores)]
'''

BIN = '''def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Returns priority with which we want to add item to each bin."""
    return -(bins - item)
'''

BIN_EXACT_FIT = '''def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Returns priority with which we want to add item to each bin."""
    residual = bins - item
    score = -residual
    score = np.where(residual == 0, 1000.0, score)
    score += 0.5 * np.log1p(bins) / item
    return score
'''

# Plain Python (the preface imports math, not numpy): a loop and branches.
PLAIN = '''def priority(item: float, bins: list) -> list:
    """Returns priority with which we want to add item to each bin."""
    scores = []
    for b in bins:
        gap = b - item
        if gap < 0:
            scores.append(-1000.0)
        elif gap == 0:
            scores.append(100.0)
        else:
            scores.append(1.0 / gap + 0.1 * b)
    return scores
'''

# A body too small for any operator but one that wraps what it returns.
GRAPH = '''def priority(node: int, degrees: np.ndarray, saturation: np.ndarray) -> np.ndarray:
    """Priorities of the nodes for being coloured next."""
    return degrees.astype(float)
'''
DEGREES, SATURATION = np.array([3, 1, 2, 2]), np.array([0, 1, 1, 0])

_points = np.random.default_rng(0).random((12, 2))
DISTANCES = np.linalg.norm(_points[:, None] - _points[None], axis=-1)

# name -> (preface, versions weakest first, a call that is True when the program works)
PARENTS = {
    "tsp": (NUMPY, [TSP], lambda f: int(f(0, 0, np.arange(1, 12), DISTANCES.copy())) in range(12)),
    "tsp_two_versions": (
        NUMPY,
        [TSP, TSP_LOOKAHEAD],
        lambda f: int(f(0, 0, np.arange(1, 12), DISTANCES.copy())) in range(12),
    ),
    "bin_packing": (NUMPY, [BIN], lambda f: np.shape(f(30.0, np.array([40.0, 55.0, 100.0]))) == (3,)),
    "bin_packing_two_versions": (
        NUMPY,
        [BIN, BIN_EXACT_FIT],
        lambda f: np.shape(f(30.0, np.array([40.0, 55.0, 100.0]))) == (3,),
    ),
    "plain_python": ("import math\n", [PLAIN], lambda f: len(f(30.0, [40.0, 55.0, 100.0])) == 3),
    "graph_colouring": (NUMPY, [GRAPH], lambda f: np.shape(f(0, DEGREES, SATURATION)) == (4,)),
}


def sampler(seed=0, **settings):
    return MutationSampler(SamplerConfig(name="gp", settings=settings), seed=seed)


def query_of(name):
    preface, versions, _ = PARENTS[name]
    function = code.function_name(versions[0])
    return build_query(preface, function, versions)


def programs(gp, query, count, per_call=4):
    """count samples made into programs the way the engine does."""
    made = []
    while len(made) < count:
        made += [to_program(s.text, query) for s in gp.sample(query, per_call)]
    return made[:count]


def run(program, preface, check):
    """Whether the program runs on a small input and returns the right kind of value."""
    namespace = {"np": np, "math": math}
    exec(program, namespace)  # noqa: S102 - our own generated test programs
    function = namespace[code.function_name(program)]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bool(check(function))


@pytest.mark.parametrize("name", PARENTS)
def test_at_least_95_percent_of_bodies_become_programs(name):
    query = query_of(name)
    samples = [s for _ in range(50) for s in sampler().sample(query, 4)]
    made = 0
    for sample in samples:
        try:
            to_program(sample.text, query)
            made += 1
        except Exception:  # noqa: BLE001 - any failure counts against the rate
            pass
    assert made >= 0.95 * len(samples)


@pytest.mark.parametrize("name", PARENTS)
def test_most_children_run_and_none_reads_an_unbound_name(name):
    preface, _, check = PARENTS[name]
    works, unbound = 0, []
    children = programs(sampler(seed=1), query_of(name), 150)
    for program in children:
        try:
            works += run(program, preface, check)
        except (NameError, UnboundLocalError) as error:
            unbound.append((str(error), program))
        except Exception:  # noqa: BLE001 - a child may fail at run time; it must not often
            pass
    assert unbound == []
    assert works >= 0.7 * len(children)


@pytest.mark.parametrize("name", [*PARENTS, "no_docstring"])
def test_a_child_comes_with_the_program_parse_makes_of_its_text(name):
    """The proposer makes each child's program from its own tree (one unparse
    instead of three); it must be, hash included, what parsing.parse makes of
    the text, or duplicates would go unnoticed. Children of children too, so
    loops, branches and nested calls come up."""
    if name == "no_docstring":
        preface, versions = NUMPY, [TSP.replace('    """Returns the next node to visit."""\n', "")]
    else:
        preface, versions, _ = PARENTS[name]
    function = code.function_name(versions[0])
    gp, made = sampler(seed=3), 0
    for _ in range(12):
        query = build_query(preface, function, versions)
        children = []
        for sample in gp.sample(query, 8):
            expected = parse(sample.text, query)
            if sample.parsed is not None and sample.parsed.program is not None:
                assert sample.parsed == expected, sample.text
                made += 1
            if expected.program:
                children.append(expected.program)
        versions = children[-3:] or versions
    assert made >= 80  # nearly every child comes with its program


def test_no_child_computes_with_an_index_parameter():
    """TSP's node numbers as numbers (`np.tanh(unvisited_nodes)`) only fit the
    training instances; with index_parameters such children are redrawn."""
    indices = ("current_node", "destination_node", "unvisited_nodes")
    query = query_of("tsp_two_versions")
    modules = Modules(numpy="np")

    def computing(gp):
        children = programs(gp, query, 300)
        roles = [analyse(ast.parse(c).body[0], modules, frozenset()).roles for c in children]
        return sum(any(NUM in r.get(name, ()) for name in indices) for r in roles)

    assert computing(sampler(seed=2)) > 0  # without the setting some do
    assert computing(sampler(seed=2, index_parameters=indices)) == 0


@pytest.mark.parametrize("name", PARENTS)
def test_children_differ_from_every_version_in_the_prompt(name):
    query = query_of(name)
    shown = {code.normal_hash(v) for v in query.versions}
    children = programs(sampler(), query, 100)
    assert not any(code.normal_hash(child) in shown for child in children)


TINY = {  # return annotation, body: tiny versions, most of which only a wrap can change
    "astype": ("np.ndarray", "return degrees.astype(float)"),
    "bare": ("np.ndarray", "return degrees"),
    "asarray": ("np.ndarray", "return np.asarray(degrees, dtype=float)"),
    "unannotated": ("", "return degrees.astype(float)"),
    "string": ("str", "return str(degrees)"),  # nothing numeric to change at all
}


def tiny_query(name):
    annotation, body = TINY[name]
    arrow = f" -> {annotation}" if annotation else ""
    return build_query(NUMPY, "priority", [
        f"def priority(node: int, degrees: np.ndarray, saturation: np.ndarray){arrow}:\n"
        f'    """Priorities of the nodes."""\n    {body}\n'])


@pytest.mark.parametrize("name", TINY)
def test_no_child_is_its_parent_again_and_no_child_at_all_is_said(name):
    """A body the operators can do nothing with used to come back as its own
    child, every time: a run of duplicates and no warning. Now a child is new
    by normal-form hash, or the sample is a rejection that says why."""
    query = tiny_query(name)
    parent = code.normal_hash(query.versions[0])
    samples = [s for _ in range(25) for s in sampler(seed=4).sample(query, 4)]
    rejected = [s.parsed.rejection for s in samples if s.parsed.program is None]
    assert all(parse(s.text, query).program_hash != parent for s in samples if s.text)
    assert all(reason.startswith("no new child in ") for reason in rejected)
    if name == "string":
        assert len(rejected) == len(samples)
        assert "no operator found anything to change" in rejected[0]
    else:
        assert not rejected  # what is returned is wrapped: np.sqrt(...), ... + saturation


def test_samples_are_bodies_named_after_the_sampler_with_a_latency_and_cpu_share():
    query = query_of("tsp")
    samples = sampler().sample(query, 3)
    assert len(samples) == 3 and sampler().sample(query, 0) == []
    for sample in samples:
        assert sample.sampler == "gp" and sample.latency > 0
        # its thread's CPU time, shared: never more than the request's wall time
        assert 0 < sample.cpu_seconds and 3 * sample.cpu_seconds <= sample.latency + 1e-3
        lines = [line for line in sample.text.splitlines() if line.strip()]
        assert all(line.startswith("    ") for line in lines)
        assert "def " not in sample.text


def test_a_batch_holds_no_repeated_body():
    texts = [s.text for s in sampler().sample(query_of("tsp_two_versions"), 16)]
    assert len(set(texts)) == len(texts)


def test_recent_children_are_not_proposed_again():
    gp, query = sampler(), query_of("tsp_two_versions")
    texts = [s.text for _ in range(25) for s in gp.sample(query, 4)]
    assert len(set(texts)) == len(texts)


def test_same_seed_and_queries_give_the_same_samples():
    queries = [query_of(name) for name in PARENTS] * 2
    first, second = sampler(seed=7), sampler(seed=7)
    texts = [[s.text for s in first.sample(q, 4)] for q in queries]
    assert texts == [[s.text for s in second.sample(q, 4)] for q in queries]
    other = [[s.text for s in sampler(seed=8).sample(q, 4)] for q in queries]
    assert other != texts


def test_requests_from_many_threads_give_what_one_thread_would():
    """The engine calls a sampler from several threads: the proposer serves one
    request at a time, so each gets what the same requests made one after the
    other, in the order served, would get."""
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads that could interleave do
    try:
        gp = sampler(seed=5)
        served = []
        unlocked = gp._sample

        def logged(query, n):
            result = unlocked(query, n)
            served.append((query, [s.text for s in result]))
            return result

        gp._sample = logged
        queries = [query_of(name) for name in PARENTS]
        threads = [threading.Thread(target=lambda q=q: [gp.sample(q, 4) for _ in range(3)])
                   for q in queries * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    assert len(served) == 3 * len(threads)
    alone = sampler(seed=5)
    assert [texts for _, texts in served] == [
        [s.text for s in alone.sample(query, 4)] for query, _ in served]


def test_make_sampler_builds_it_from_the_config():
    gp = make_sampler(SamplerConfig(name="offline", backend="mutation"), seed=3)
    assert isinstance(gp, MutationSampler) and gp.name == "offline"


# Operators -------------------------------------------------------------------


def _only(operator, **extra):
    weights = {name: 0.0 for name in OPERATORS}
    weights[operator] = 1.0
    return dict(
        weights=weights, crossover_rate=0.0, constant_tuning_rate=0.0, mutations_per_child=1, **extra
    )


def _statements(program):
    return [node for node in ast.walk(ast.parse(program)) if isinstance(node, ast.stmt)]


def _ops(program, kind):
    tree = ast.parse(program)
    if kind == "binop":
        return sorted(type(n.op).__name__ for n in ast.walk(tree) if isinstance(n, ast.BinOp))
    return sorted(type(op).__name__ for n in ast.walk(tree) if isinstance(n, ast.Compare) for op in n.ops)


def _names(program):
    return sorted(n.id for n in ast.walk(ast.parse(program)) if isinstance(n, ast.Name))


class _Zeroed(ast.NodeTransformer):
    def visit_UnaryOp(self, node):
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return ast.Constant(0)
        return self.generic_visit(node)

    def visit_Constant(self, node):
        return ast.Constant(0) if isinstance(node.value, (int, float)) else node


def _shape(program):
    """The program with every number (negative ones too) replaced by 0: its structure."""
    return code.normal_form(ast.unparse(_Zeroed().visit(ast.parse(program))))


def _size(program):
    return node_count(ast.parse(program).body[0].body)


# operator -> (parent, what every child of that operator alone shows)
OPERATOR_EFFECTS = {
    "constant": ("bin_packing_two_versions", lambda parent, child: _shape(child) == _shape(parent)),
    "binop": ("tsp_two_versions", lambda p, c: _ops(c, "binop") != _ops(p, "binop") and _size(c) == _size(p)),
    "compare": ("plain_python", lambda p, c: _ops(c, "compare") != _ops(p, "compare")),
    "minmax": ("tsp", lambda p, c: "np.argmax(distances)" in c),
    "name": ("tsp_two_versions", lambda p, c: _names(c) != _names(p) and _size(c) == _size(p)),
    "insert": ("bin_packing", lambda p, c: _size(c) > _size(p) and set(_names(p)) <= set(_names(c))),
    "replace": ("bin_packing_two_versions", lambda p, c: True),
    "delete": ("tsp_two_versions", lambda p, c: _size(c) < _size(p)),
    "statement": ("plain_python", lambda p, c: len(_statements(c)) > len(_statements(p))),
}


@pytest.mark.parametrize("operator", OPERATORS)
def test_every_operator_changes_the_program_in_its_own_way(operator):
    name, effect = OPERATOR_EFFECTS[operator]
    query = query_of(name)
    parent = query.versions[-1]
    gp = sampler(**_only(operator))
    children = [to_program(s.text, query) for s in gp.sample(query, 12)]
    changed = [c for c in children if code.normal_hash(c) != code.normal_hash(parent)]
    # Children of the weaker version are judged against it.
    for child in changed:
        parents = [v for v in query.versions if effect(v, child)]
        assert parents, f"{operator} made:\n{child}"
    assert len(changed) == len(children)


def test_constant_perturbation_moves_constants_on_their_own_scale():
    big = BIN_EXACT_FIT.replace("1000.0", "100000.0")
    query = build_query(NUMPY, "priority", [big])
    gp = sampler(**_only("constant", constant_sigma=0.1))
    moved = []
    for program in programs(gp, query, 60):
        numbers = [n.value for n in ast.walk(ast.parse(program)) if isinstance(n, ast.Constant)]
        moved += [v for v in numbers if isinstance(v, float) and 10_000 < v < 1_000_000 and v != 1e5]
    # The large constant moves by thousands, not by fractions of one.
    assert moved and all(abs(v - 1e5) > 100 for v in moved)


def test_an_axis_keyword_is_never_stepped():
    """axis=1 of a row reduction fits the array's shape; axis=2 only breaks it."""
    rows = TSP.replace("    return unvisited_nodes[np.argmin(distances)]",
                       "    spread = np.std(distance_matrix[unvisited_nodes][:, unvisited_nodes], axis=1)\n"
                       "    return unvisited_nodes[np.argmin(distances + 2 * spread)]")
    query = build_query(NUMPY, "select_next_node", [rows])
    for weights in ("constant", "binop", "replace"):
        for program in programs(sampler(**_only(weights)), query, 40):
            axes = [k.value for k in ast.walk(ast.parse(program))
                    if isinstance(k, ast.keyword) and k.arg == "axis"]
            assert all(isinstance(a, ast.Constant) and a.value == 1 for a in axes), program


def test_a_matrix_reduced_along_an_axis_stays_inside_its_reduction():
    """m[v][:, v] is (k, k): used as an operand next to the (k,) distances it
    broadcasts to a matrix, and the program fails on its first input."""
    rows = TSP.replace("    return unvisited_nodes[np.argmin(distances)]",
                       "    spread = np.std(distance_matrix[unvisited_nodes][:, unvisited_nodes], axis=1)\n"
                       "    return unvisited_nodes[np.argmin(distances + 2 * spread)]")
    query = build_query(NUMPY, "select_next_node", [rows])
    matrix = "distance_matrix[unvisited_nodes][:, unvisited_nodes]"
    for program in programs(sampler(seed=3), query, 150):
        tree = ast.parse(program)
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                if isinstance(child, ast.Subscript) and ast.unparse(child) == matrix:
                    assert isinstance(parent, ast.Call) and any(
                        k.arg == "axis" for k in parent.keywords), program


def test_statement_edits_add_a_local_that_is_used_afterwards():
    query = query_of("bin_packing_two_versions")
    gp = sampler(**_only("statement"))
    new_locals = 0
    for program in programs(gp, query, 40):
        tree = ast.parse(program)
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets}
        for name in assigned - {"residual", "score"}:
            new_locals += 1
            assert program.count(name) >= 2, program  # assigned, then read
    assert new_locals > 0


def test_constant_tuning_keeps_the_best_versions_structure():
    query = query_of("bin_packing_two_versions")
    gp = sampler(constant_tuning_rate=1.0)
    best = query.versions[-1]
    children = [to_program(s.text, query) for s in gp.sample(query, 8)]
    assert all(_shape(child) == _shape(best) for child in children)
    assert len({code.normal_hash(c) for c in children} | {code.normal_hash(best)}) == 9


def test_crossover_mixes_material_of_two_parents():
    weak = '''def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Returns priority with which we want to add item to each bin."""
    return -(bins - item) + 0.25 * np.log1p(bins)
'''
    strong = '''def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Returns priority with which we want to add item to each bin."""
    return np.sqrt(item) / (bins - item + 7.5)
'''
    query = build_query(NUMPY, "priority", [weak, strong])
    gp = sampler(crossover_rate=1.0, constant_tuning_rate=0.0)
    children = programs(gp, query, 40)
    mixed = [c for c in children if ("log1p" in c or "0.25" in c) and ("sqrt" in c or "7.5" in c)]
    assert len(mixed) >= 0.6 * len(children)


def test_crossover_with_a_single_version_falls_back_to_mutation():
    query = query_of("bin_packing")
    children = programs(sampler(crossover_rate=1.0, constant_tuning_rate=0.0), query, 12)
    assert code.normal_hash(BIN) not in {code.normal_hash(c) for c in children}


def test_only_numpy_functions_that_exist_and_none_without_numpy():
    for program in programs(sampler(), query_of("bin_packing_two_versions"), 200):
        for node in ast.walk(ast.parse(program)):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id == "np":
                    assert hasattr(np, node.attr), program
    assert not any("np." in p for p in programs(sampler(), query_of("plain_python"), 100))


# Size control ----------------------------------------------------------------


def test_children_stay_within_the_size_limit_of_their_parents():
    query = query_of("tsp_two_versions")
    settings = dict(max_nodes_factor=1.1, max_nodes_slack=3, mutations_per_child=3)
    limit = size_limit([_size(v) for v in query.versions], MutationSettings(**settings))
    sizes = [_size(p) for p in programs(sampler(**settings), query, 200)]
    assert max(sizes) <= limit
    assert max(sizes) > max(_size(v) for v in query.versions)  # growth is allowed, to the limit


def test_a_parent_over_the_absolute_limit_may_not_grow():
    query = query_of("tsp_two_versions")
    biggest = max(_size(v) for v in query.versions)
    sizes = [_size(p) for p in programs(sampler(max_nodes=10), query, 100)]
    assert max(sizes) <= biggest


def test_big_parents_favour_shrinking():
    query = query_of("tsp_two_versions")
    parent = _size(query.versions[-1])
    big = sampler(shrink_above=10, crossover_rate=0.0, constant_tuning_rate=0.0)
    small = sampler(shrink_above=1000, crossover_rate=0.0, constant_tuning_rate=0.0)
    shrunk_when_big = sum(_size(p) < parent for p in programs(big, query, 200))
    shrunk_otherwise = sum(_size(p) < parent for p in programs(small, query, 200))
    assert shrunk_when_big > 1.5 * shrunk_otherwise


# Settings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"mutation_rate": 0.5}, "samplers.gp.settings.mutation_rate"),
        ({"crossover_rate": 2.0}, "samplers.gp.settings.crossover_rate"),
        ({"max_nodes_factor": "big"}, "samplers.gp.settings.max_nodes_factor"),
        ({"weights": {"mutate": 1.0}}, "samplers.gp.settings.weights.mutate"),
        ({"weights": {"constant": -1}}, "samplers.gp.settings.weights.constant"),
        ({"weights": {name: 0 for name in OPERATORS}}, "samplers.gp.settings.weights"),
    ],
)
def test_bad_settings_are_errors_that_name_the_key(settings, key):
    with pytest.raises(ConfigError) as error:
        MutationSampler(SamplerConfig(name="gp", settings=settings))
    assert key in str(error.value)


def test_defaults_are_valid_and_every_operator_has_a_weight():
    defaults = MutationSettings()
    assert set(defaults.weights.model_dump()) == set(OPERATORS)
    assert all(w > 0 for w in defaults.weights.model_dump().values())


def test_samples_do_not_depend_on_the_process_hash_seed():
    """Set iteration order changes with PYTHONHASHSEED; the samples must not."""
    script = (
        "import hashlib, sys; sys.path.insert(0, 'tests/unit'); import test_mutation as t\n"
        "gp, digest = t.sampler(seed=3), hashlib.sha256()\n"
        "for name in t.PARENTS:\n"
        "    for _ in range(5):\n"
        "        for s in gp.sample(t.query_of(name), 4): digest.update(s.text.encode())\n"
        "print(digest.hexdigest())\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def _name_against_itself(node):
    """`x - x`, `x / x`, `x <= x`, `np.maximum(x, x)`."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Sub, ast.Div)):
        pair = [node.left, node.right]
    elif isinstance(node, ast.Compare):
        pair = [node.left, *node.comparators]
    elif isinstance(node, ast.Call) and len(node.args) == 2:
        pair = node.args
    else:
        return False
    return all(isinstance(n, ast.Name) for n in pair) and len({n.id for n in pair}) == 1


def test_children_add_no_dead_assignment_and_no_name_against_itself():
    for program in programs(sampler(seed=4), query_of("bin_packing"), 200):
        tree = ast.parse(program)
        assigned = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets}
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert assigned <= read, program
        assert not any(_name_against_itself(node) for node in ast.walk(tree)), program


def test_exponents_stay_constants():
    squared = BIN.replace("return -(bins - item)", "return -(bins - item) ** 2")
    query = build_query(NUMPY, "priority", [squared])
    from funsearch.samplers.mutation.vocabulary import constant_value

    for program in programs(sampler(seed=6), query, 200):
        for node in ast.walk(ast.parse(program)):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
                assert constant_value(node.right) is not None, program


def test_insertion_offers_the_distance_to_a_constant():
    query = query_of("bin_packing")
    gp = sampler(seed=7, **_only("insert"))
    targets = [p for p in programs(gp, query, 200) if "np.abs(bins - item - " in p]
    assert targets


def _index_as_number(program):
    """Whether a node index is an operand of arithmetic (`current_node * 2`)."""
    for node in ast.walk(ast.parse(program)):
        if isinstance(node, ast.BinOp):
            for side in (node.left, node.right):
                if isinstance(side, ast.Name) and side.id in ("current_node", "destination_node"):
                    return True
    return False


def test_node_indices_are_seldom_read_as_numbers():
    children = programs(sampler(seed=8), query_of("tsp"), 300)
    assert sum(map(_index_as_number, children)) <= 0.03 * len(children)


@pytest.mark.parametrize("body, dead", [
    ("t = x\n    t = t + 1\n    return t", 0),  # the second reads the first
    ("t = x\n    t = 2 * x\n    return t", 1),  # the first is never read
    ("u = 2\n    if x > 0:\n        u = 3\n    u = 4\n    return u", 1),  # a branch reads nothing
    ("u = 2\n    if x > u:\n        u = 3\n    u = 4\n    return u", 0),
    ("u = 2\n    u += 1\n    u = 4\n    return u", 0),  # `+=` reads it
    ("y = x - x\n    return y", 1),
    ("y = 1\n    return x", 1),  # assigned and never read
])
def test_waste_counts_dead_assignments_and_self_cancelling_terms(body, dead):
    from funsearch.samplers.mutation.ops import waste

    function = ast.parse(f"def f(x):\n    {body}\n").body[0]
    assert waste(analyse(function, Modules(numpy="np"), frozenset())) == dead
