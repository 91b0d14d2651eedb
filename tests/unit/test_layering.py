"""The architecture's import rules, checked on the source."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_ray_is_imported_only_in_the_runtime_package():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "funsearch").rglob("*.py")
                 if "ray" in imported_modules(path) and "runtime" not in path.parts]
    assert offenders == []


def test_vllm_is_imported_only_by_its_sampler():
    offenders = [str(path.relative_to(ROOT)) for path in (ROOT / "funsearch").rglob("*.py")
                 if "vllm" in imported_modules(path) and path.name != "vllm_engine.py"]
    assert offenders == []


def test_sandbox_worker_imports_nothing_from_funsearch():
    assert "funsearch" not in imported_modules(ROOT / "sandbox" / "worker.py")


def test_importing_funsearch_and_its_cli_loads_neither_ray_nor_vllm():
    check = ("import sys, funsearch, funsearch.cli, funsearch.engine; "
             "print(sorted(m for m in ('ray', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
