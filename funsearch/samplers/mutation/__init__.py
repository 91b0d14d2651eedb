"""The offline proposer: genetic programming over the prompt's versions, no model.

proposer.py is the sampler (MutationSampler) and its settings; the other
modules are its parts: sites.py (where things are in a function, with numeric.py
and trees.py), vocabulary.py (what new code may be made of) and expressions.py
(new code made of it), ops.py (the mutation operators), crossover.py,
and the checks that redraw a child which would waste a sample: carry.py,
neutral.py, monotone.py, plus hoist.py, which makes a child cheaper to run.
"""
