"""Spending a budget: which sampler serves the next prompt, how many prompts
are out, what every sample cost, and a simulated clock to study it on.

The engine talks to one object here (scheduler.Scheduler); the rest is its
parts: budget.py (costs and budgets), policies.py (the bandits), controller.py
(prompts against evaluations), simulation.py (the same loop, simulated).
"""
