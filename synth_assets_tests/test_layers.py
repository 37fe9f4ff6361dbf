"""The dependency rule: the engine (``synth_assets.core``) and the demo bank never import
Dagster, so they run and test alone and a spawned shard worker loads numpy and polars only."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "synth_assets"


def _imported_roots(path: Path) -> set[str]:
    """Top-level package of every import in a module, at any depth (lazy imports included)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", ["core", "demo"])
def test_no_module_of_the_layer_imports_dagster(layer):
    modules = sorted((PACKAGE / layer).rglob("*.py"))
    assert modules
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in modules
        if {"dagster", "dagster_k8s"} & _imported_roots(p)
    ]
    assert offenders == []


def test_importing_every_core_module_loads_no_dagster():
    core = PACKAGE / "core"
    names = sorted(
        "synth_assets.core."
        + ".".join(p.relative_to(core).with_suffix("").parts).removesuffix(".__init__")
        for p in core.rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=PACKAGE.parent,
    )
    assert out.stdout.strip() == "[]"
