"""Crossover: new programs from two versions of the prompt.

The versions a prompt shows were each chosen by the database for a reason;
crossover lets a child inherit from two of them. A subtree moves only into a
position of the same role (sites.py) where every name it reads is bound, and a
statement sequence only where nothing it needs goes missing, so children of
crossover run as often as mutants do.
"""

from __future__ import annotations

import ast

from funsearch.samplers.mutation.sites import BOOL, NUM
from funsearch.samplers.mutation.trees import clone, loaded_names
from funsearch.samplers.mutation.vocabulary import Context, constant_value


def crossover_expression(recipient: ast.FunctionDef, donor: ast.FunctionDef, ctx: Context) -> bool:
    """A subtree of the recipient replaced by a subtree of the donor of the same
    role (a number by a number, a condition by a condition) whose names are
    bound at the recipient's site; material new to the recipient is preferred."""
    text = ast.unparse(recipient)
    donated: dict[str, dict[str, ast.expr]] = {NUM: {}, BOOL: {}}
    donor_sites = [s for s in ctx.analyse(donor).sites if s.role in donated]
    for site in ctx.shuffled(donor_sites)[:40]:  # enough choice, bounded cost
        if constant_value(site.node) is None:
            donated[site.role].setdefault(ast.unparse(site.node), site.node)
    sites = [s for s in ctx.analyse(recipient).sites if s.role in donated]
    for site in ctx.shuffled(sites)[:12]:
        own = ast.unparse(site.node)
        options = [
            (source, node)
            for source, node in donated[site.role].items()
            if source != own
            and all(n in site.scope or n in ctx.allowed for n in loaded_names(node))
        ]
        if not options:
            continue
        novel = [option for option in options if option[0] not in text]
        if novel and ctx.rng.random() < 0.8:
            options = novel
        site.replace(clone(ctx.choice(options)[1]))
        return True
    return False


def crossover_statements(recipient: ast.FunctionDef, donor: ast.FunctionDef, ctx: Context) -> bool:
    """Statement-level crossover: the recipient's assignment of a name replaced
    by the donor's assignment of that name, or one-point crossover of the two
    bodies (the recipient's first statements, the donor's last ones)."""
    before = [ast.unparse(s) for s in recipient.body]
    original = list(recipient.body)
    if ctx.rng.random() < 0.5:
        targets = {_assigned(s): s for s in donor.body if _assigned(s)}
        genes = [
            (i, targets[_assigned(s)])
            for i, s in enumerate(recipient.body)
            if _assigned(s) in targets and not ast.unparse(s) == ast.unparse(targets[_assigned(s)])
        ]
        for i, gene in ctx.shuffled(genes)[:4]:
            recipient.body[i] = clone(gene)
            if not ctx.unbound(recipient):
                return True
            recipient.body[:] = original
    for _ in range(6):
        i = int(ctx.rng.integers(0, len(original)))
        j = int(ctx.rng.integers(0, len(donor.body)))
        recipient.body[:] = original[:i] + [clone(s) for s in donor.body[j:]]
        body = [ast.unparse(s) for s in recipient.body]
        if body != before and body != [ast.unparse(s) for s in donor.body]:
            if not ctx.unbound(recipient):
                return True
    recipient.body[:] = original
    return False


def _assigned(statement: ast.stmt) -> str | None:
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        return target.id if isinstance(target, ast.Name) else None
    return None
