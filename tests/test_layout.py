"""The layout's rules, checked on the source: who may import what, who owns which file name."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
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


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_over_500_lines(path: Path) -> None:
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500


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
