"""Studies: which configuration wins at a compute budget, and which run to make next.

A study fits, per arm (configuration), a law of best score against compute
to its runs, keeps the parameters' uncertainty, and chooses each next run by
the information it is expected to bring about which arm is best at the
decision budget B. See README, "Studies".
"""
