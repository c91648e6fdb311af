"""The repository's shape: it stands alone, its functions and modules stay readable, and the
CLI answers `--help` without loading JAX or OpenCV."""

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("mer_jax", "data_builders")
MAX_FUNCTION_LINES = 100
MAX_MODULE_LINES = 600


def _tracked_files():
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:  # not a git checkout (an sdist, say): every file below the root
        return [p for p in ROOT.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).is_file()]


def _sources():
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def test_nothing_refers_to_files_outside_the_repository():
    outside = ("../shared", "/work/shared", "SEEDS.md", "JAX_ENGINE_NOTES")
    hits = []
    for path in _tracked_files():
        if (
            path.suffix not in {".py", ".md", ".toml", ".txt", ".cfg", ".bib"}
            and path.name != "run"
        ):
            continue
        if path == pathlib.Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            hits += [
                f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for s in outside if s in line
            ]
    assert not hits, "\n".join(hits)


def test_functions_and_modules_stay_short():
    too_long = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: module of {lines} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length}")
    assert not too_long, "\n".join(too_long)


def _imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_preprocessing_and_models_do_not_import_the_builders():
    """data_builders depends on mer_jax.preprocess, never the other way round."""
    offenders = []
    for package in ("preprocess", "models", "magnifier", "engine"):
        for path in sorted((ROOT / "mer_jax" / package).rglob("*.py")):
            bad = sorted(n for n in _imports(path) if n.split(".")[0] == "data_builders")
            offenders += [f"{path.relative_to(ROOT)} imports {n}" for n in bad]
    assert not offenders, "\n".join(offenders)


def test_cli_help_loads_neither_jax_nor_opencv():
    code = (
        "import sys\n"
        "from mer_jax import cli\n"
        "try:\n"
        "    cli.main(['--help'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "heavy = sorted({'jax', 'cv2', 'flax', 'tensorflow_datasets'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sweep" in done.stdout and "bench-preprocess" in done.stdout


def test_the_compile_heavy_files_conftest_schedules_first_exist():
    from tests.conftest import COMPILE_HEAVY

    missing = [path for path in COMPILE_HEAVY if not (ROOT / path).is_file()]
    assert not missing, f"tests/conftest.py COMPILE_HEAVY names missing files: {missing}"
