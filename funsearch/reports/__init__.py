"""Reading runs after (or while) they run: `funsearch show`, `compare`, `export`.

rundata.py folds one run's event log into numbers; report.py prints or
exports one run; compare.py sets groups of runs side by side at equal
budgets; stats.py has the step functions and bootstrap intervals they use.
Nothing here writes to a run directory but export's output file.
"""
