"""Dependency direction: `data_builders` builds on `mer_jax.preprocess`, never the reverse.

The builders compute their stored views with the preprocessing code; the
preprocessing code and the models must run where no builder is installed, so
no module of `mer_jax.preprocess` or `mer_jax.models` may import `data_builders`
(at module level or inside a function).
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).parents[2]
PACKAGES = ("mer_jax/preprocess", "mer_jax/models")


def _imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `tree` (relative ones resolved), and
    of every `importlib.import_module` / `__import__` call with a literal name."""
    package = module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            arg = node.args[0] if node.args else None
            if name in ("import_module", "__import__") and isinstance(arg, ast.Constant):
                out.append((node.lineno, str(arg.value)))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def _sources() -> list[pathlib.Path]:
    return [path for folder in PACKAGES for path in sorted((ROOT / folder).rglob("*.py"))]


def test_the_packages_exist():
    assert all((ROOT / folder / "__init__.py").is_file() for folder in PACKAGES)
    assert len(_sources()) > 5


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_preprocess_and_models_do_not_import_data_builders(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imported_modules(tree, module)
        if name == "data_builders" or name.startswith("data_builders.")
    ]
    assert not bad, bad


def test_the_check_sees_every_form_of_import():
    sources = {
        "import data_builders": True,
        "import data_builders.views as v": True,
        "from data_builders import views": True,
        "def f():\n    from data_builders.smic import Builder": True,
        "importlib.import_module('data_builders.smic')": True,
        "from mer_jax.preprocess import flow": False,
        "from . import flow": False,
    }
    for source, imports in sources.items():
        names = [n for _, n in _imported_modules(ast.parse(source), "mer_jax.preprocess.x")]
        found = any(n == "data_builders" or n.startswith("data_builders.") for n in names)
        assert found == imports, source
