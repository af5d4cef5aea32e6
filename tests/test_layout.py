"""The layout's rules, checked on the source: who may import what, who owns which file name."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hepscale"

#: the command layer: tool modules and CLI modules (argparse, printing, wiring the processor in)
COMMAND_MODULES = {"cli.py", "__main__.py", "generate.py", "process.py", "convert.py", "tokenize.py", "sample.py",
                   "evaluate.py", "quickstart.py", "score.py"}


def _is_command(path: Path) -> bool:
    rel = path.relative_to(PACKAGE)
    if len(rel.parts) == 1:
        return rel.name in COMMAND_MODULES
    return rel.name in {"cli.py", "_cli.py", "__main__.py"}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_library_never_imports_processors() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if not _is_command(p)
                 and any(n == "processors" or n.startswith("processors.") for n in _imports(p))]
    assert offenders == []


def test_no_argparse_printing_or_logging_setup_in_library_modules() -> None:
    offenders = []
    for path in _sources():
        if _is_command(path):
            continue
        text = path.read_text(encoding="utf-8")
        if "argparse" in _imports(path) or "logging.basicConfig" in text or re.search(r"^\s*print\(", text, re.M):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_one_logging_setup() -> None:
    users = [str(p.relative_to(ROOT)) for p in _sources() if "logging.basicConfig" in p.read_text(encoding="utf-8")]
    assert users == ["hepscale/cli.py"]


def test_run_folder_file_names_have_one_owner() -> None:
    names = ('"result.json"', '"metrics.jsonl"', '"ckpt.pt"', '"checkpoints/ckpt.pt"', '"samples.parquet"',
             "/ \"result.json\"", "/ \"samples.parquet\"")
    offenders = []
    for path in _sources():
        if path == PACKAGE / "runs" / "folder.py":
            continue
        text = path.read_text(encoding="utf-8")
        offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n in text]
    assert offenders == []


def test_exit_codes_are_defined_once() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in _sources() if p != PACKAGE / "errors.py"
                 and re.search(r"^[A-Z_]*(EXIT|EXIT_CODE)[A-Z_]* = \d+", p.read_text(encoding="utf-8"), re.M)]
    assert offenders == []


#: the most lines of code a function's body may hold (see :func:`_function_code_lines`)
MAX_FUNCTION_CODE_LINES = 80

#: functions allowed over :data:`MAX_FUNCTION_CODE_LINES`, ``"path::qualified.name" -> reason``
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {
    # numba kernels: one compiled loop each; a split adds calls (and state passed around) in the hot loop
    "hepscale/jets/observables.py::_cluster": "@numba.njit kernel: the sequential-recombination loop",
    "hepscale/jets/observables.py::_kernel": "@numba.njit kernel: the per-jet loop over all observables",
}

_NON_CODE_TOKENS = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                    tokenize.ENDMARKER}


def _function_code_lines(source: str) -> dict[str, int]:
    """Lines of code in the body of each function and method of ``source``, by qualified name.

    A body's lines run from its first statement to the function's last line (the decorators and
    the signature are not counted). Blank lines, comment-only lines and the docstring do not
    count; a statement or string spanning several lines counts each of them. A nested function
    or class is not counted in its parent: each nested function has its own count (and limit),
    named ``outer.inner``; methods are named ``Class.method``.
    """
    code: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NON_CODE_TOKENS:
            code.update(range(tok.start[0], tok.end[0] + 1))
    counts: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                body = set(range(child.body[0].lineno, (child.end_lineno or child.lineno) + 1))
                first = child.body[0]
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                        and isinstance(first.value.value, str):
                    body -= set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
                for sub in ast.walk(child):
                    if sub is not child and isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        start = min([d.lineno for d in sub.decorator_list] + [sub.lineno])
                        body -= set(range(start, (sub.end_lineno or sub.lineno) + 1))
                counts[name] = len(body & code)
                visit(child, name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return counts


def _long_functions(source: str, label: str) -> dict[str, int]:
    """``{"label::name": code lines}`` for the functions of ``source`` over the limit."""
    return {f"{label}::{name}": n for name, n in _function_code_lines(source).items() if n > MAX_FUNCTION_CODE_LINES}


def test_function_code_line_counter() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_CODE_LINES))
    source = f'''
import numba


@numba.njit(cache=True)
def ok(a,
       b):
    """Docstring,

    over several lines.
    """
    # a comment

{body}
    return (a,
            b)


class C:
    def method(self):
        def inner():
            # comment
            return 1

        text = """a
        b"""
        return inner()


def too_long():
{body}

    return x0
'''
    counts = _function_code_lines(source)
    assert counts == {"ok": MAX_FUNCTION_CODE_LINES + 2, "C.method": 3, "C.method.inner": 1,
                      "too_long": MAX_FUNCTION_CODE_LINES + 1}
    assert _long_functions(source, "m.py") == {"m.py::ok": MAX_FUNCTION_CODE_LINES + 2,
                                               "m.py::too_long": MAX_FUNCTION_CODE_LINES + 1}
    assert _long_functions("def f():\n    \"\"\"Doc.\"\"\"\n" + body + "\n", "m.py") == {}


@pytest.mark.parametrize("path", _sources() + sorted((ROOT / "processors").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_over_80_code_lines(path: Path) -> None:
    """Every function and method holds at most 80 lines of code (numba kernels on an allow-list).

    Lines of code: the body without its docstring, blank lines and comment-only lines. A nested
    function is counted on its own (with the same limit), not in its parent's count.
    """
    label = path.relative_to(ROOT).as_posix()
    long = _long_functions(path.read_text(encoding="utf-8"), label)
    assert {name: n for name, n in long.items() if name not in LONG_FUNCTIONS_ALLOWED} == {}
    stale = [name for name in LONG_FUNCTIONS_ALLOWED if name.startswith(f"{label}::") and name not in long]
    assert stale == [], "on the allow-list but absent or within the limit now"


def test_public_api_is_importable_without_heavy_dependencies() -> None:
    code = ("import sys, hepscale, hepscale.jets, hepscale.models, hepscale.runs, hepscale.train, hepscale.study;"
            "heavy = [m for m in ('torch', 'awkward', 'numba', 'coffea', 'pandas') if m in sys.modules];"
            "assert not heavy, heavy;"
            "names = [n for n in hepscale.__all__ if getattr(hepscale, n, None) is None];"
            "assert not names, names")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_every_tool_runs_as_a_module_with_help() -> None:
    from hepscale.cli import COMMANDS

    for name in COMMANDS:
        for cmd in ([sys.executable, "-m", f"hepscale.{name}", "--help"], [sys.executable, "-m", "hepscale", name, "--help"]):
            res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            assert res.returncode == 0, (cmd, res.stderr[-2000:])
            assert "usage" in res.stdout.lower(), cmd


def _task_names() -> set[str]:
    from hepscale.tasks import all_specs

    return {n for spec in all_specs().values() for n in (spec.name, *spec.aliases)}


def _task_name_branches(tree: ast.AST, names: set[str]) -> list[int]:
    """Lines where a task name is compared with, looked up by, or matched: ``x == "tagging"``,
    ``x in ("generation", ...)``, ``{"tagging": ...}``, ``TABLE["tagging"]``, ``case "tagging"``."""

    def named(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in names
        return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(named(e) for e in node.elts)

    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare) and any(named(n) for n in (node.left, *node.comparators)):
            lines.append(node.lineno)
        elif isinstance(node, ast.Dict) and any(named(k) for k in node.keys):
            lines.append(node.lineno)
        elif isinstance(node, ast.Subscript) and named(node.slice):
            lines.append(node.lineno)
        elif isinstance(node, ast.MatchValue) and named(node.value):
            lines.append(node.lineno)
    return lines


def test_task_branch_finder() -> None:
    """The finder of task-name branches finds each form (the rule below can fail)."""
    source = ("a = t == 'tagging'\nb = t in ('generation', 'x')\nc = {'tagging': 1}\nd = T['generation']\n"
              "match t:\n    case 'tagging':\n        pass\ne = t == 'other'\nf = 'tagging'\n")
    assert _task_name_branches(ast.parse(source), {"generation", "tagging"}) == [1, 2, 3, 4, 6]


def test_no_task_name_branch_outside_the_tasks_package() -> None:
    """Only ``hepscale/tasks/`` knows the tasks by name: everything else asks the task's spec."""
    names = _task_names()
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in [*_sources(), *sorted((ROOT / "processors").rglob("*.py"))]
                 if PACKAGE / "tasks" not in p.parents
                 for line in _task_name_branches(ast.parse(p.read_text(encoding="utf-8")), names)]
    assert offenders == []


#: the packages of hepscale along the data path, lowest first: a module imports from its own
#: package and those before it, never from one after it. ``study`` and the task folders
#: ``tasks/<name>/`` are the top (they ask each other); the modules of ``hepscale/`` itself
#: (config, errors, resources, ...) and the task registry ``hepscale.tasks`` are below everything.
LAYERS = ("plotting", "events", "jets", "tokens", "models", "runs", "train", "metrics", "fit", "condor", "study")


def _layer(module: str) -> int | None:
    """The layer of a ``hepscale`` module (-1: the base; None: not of hepscale)."""
    parts = module.split(".")
    if parts[0] != "hepscale":
        return None
    if len(parts) == 1 or parts[1] not in (*LAYERS, "tasks"):
        return -1
    if parts[1] == "tasks":
        return -1 if len(parts) == 2 else len(LAYERS) - 1  # the registry; a task's folder and the spec
    return LAYERS.index(parts[1])


def _runtime_imports(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, module)`` of every absolute import, at the top or inside a function, except those
    under ``if TYPE_CHECKING:`` (never executed)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def test_import_finder_sees_function_level_imports_and_skips_type_checking() -> None:
    source = ("import hepscale.fit\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hepscale.study\n"
              "def f():\n    from hepscale.condor import x\n")
    assert _runtime_imports(ast.parse(source)) == [(1, "hepscale.fit"), (2, "typing"), (6, "hepscale.condor")]
    assert _layer("hepscale.jets.dataset") < _layer("hepscale.fit.laws") < _layer("hepscale.tasks.tagging.spec")
    assert _layer("hepscale.tasks") == _layer("hepscale.config") == -1


def test_no_import_points_up_the_data_path() -> None:
    """No library module imports (at the top or inside a function) from a later step of the data
    path; the command layer (tools and CLI modules) wires everything together and may."""
    offenders = []
    for path in _sources():
        if _is_command(path):
            continue
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        mine = _layer(module)
        for line, name in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            theirs = _layer(name)
            if mine is not None and theirs is not None and theirs > max(mine, -1) and not (
                    mine == len(LAYERS) - 1 and theirs == mine):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert offenders == []
