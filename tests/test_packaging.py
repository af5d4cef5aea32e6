"""The files shipped with the package (``hepscale.resources``) and a real, installed wheel."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from hepscale.condor import load_site, wrapper_path
from hepscale.models.sizes import model_sizes
from hepscale.quickstart import QUICKSTART_STUDY
from hepscale.resources import project_file, resource, resource_path

ROOT = Path(__file__).resolve().parent.parent

#: what a wheel is built from (everything else of a checkout stays out of the copy)
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "BENCHMARKS.md",
                "hepscale", "processors", "configs", "condor")

#: files the wheel must hold, as files, with the bytes of the project's copies
SHIPPED = ("configs/models.yaml", "configs/sites/generic-gpu.yaml", "configs/train/quick_cpu.yaml",
           "configs/train/generation_cpu.yaml",
           "configs/studies/generation_phase1_cpu.yaml", "configs/process/ak8.yaml", "condor/hepscale_job.sh")


def test_resources_are_the_project_folders():
    # one copy: the package reaches configs/ and condor/ of the project through links
    for folder in ("configs", "condor"):
        link = ROOT / "hepscale" / "_resources" / folder
        assert link.is_symlink() and link.resolve() == (ROOT / folder).resolve()
    for relative in SHIPPED:
        assert resource(relative).read_bytes() == (ROOT / relative).read_bytes()
        path = resource_path(relative)
        assert isinstance(path, Path) and path.is_file() and path.read_bytes() == (ROOT / relative).read_bytes()
    table = yaml.safe_load(resource("configs/models.yaml").read_text(encoding="utf-8"))["sizes"]
    assert list(model_sizes()) == list(table)
    assert wrapper_path().read_bytes() == (ROOT / "condor" / "hepscale_job.sh").read_bytes()


@pytest.mark.parametrize(("relative", "message"), [
    ("configs/nosuch.yaml", r"resource 'configs/nosuch.yaml' is not in the installed package"),
    ("configs/sites", r"resource 'configs/sites' is not in the installed package"),  # a folder, not a file
    ("../setup.cfg", r"resource '../setup.cfg' is not a path inside the shipped folders \(configs/, condor/\)"),
    ("hepscale/config.py", r"not a path inside the shipped folders"),
    ("/etc/passwd", r"not a path inside the shipped folders"),
])
def test_missing_resource_is_named(relative, message):
    with pytest.raises(FileNotFoundError, match=message):
        resource(relative)
    with pytest.raises(FileNotFoundError, match=message):
        resource_path(relative)


def test_project_file_prefers_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: the packaged copies
    study = project_file(QUICKSTART_STUDY)
    assert study.is_absolute() and study.read_bytes() == (ROOT / QUICKSTART_STUDY).read_bytes()
    assert load_site("generic-gpu").name == "generic-gpu"
    mine = tmp_path / QUICKSTART_STUDY
    mine.parent.mkdir(parents=True)
    mine.write_text("name: mine\n")
    assert project_file(QUICKSTART_STUDY) == QUICKSTART_STUDY  # relative to the working directory
    assert project_file(mine) == mine
    with pytest.raises(FileNotFoundError, match=r"'configs/studies/nosuch.yaml' is neither in the working directory"):
        project_file("configs/studies/nosuch.yaml")


def _run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    res = subprocess.run(args, check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(args)} exited {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.mark.slow
def test_wheel_installs_and_runs_the_quickstart_from_an_empty_folder(tmp_path):
    # build from a clean copy: a build in the checkout writes build/ and *.egg-info there, and
    # files left in build/ by an earlier build would end up in the wheel
    src = tmp_path / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif (ROOT / name).is_file():
            shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    dist = tmp_path / "dist"
    _run([*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), str(src)], cwd=tmp_path)
    (wheel,) = dist.glob("hepscale-*.whl")

    with zipfile.ZipFile(wheel) as zf:
        infos = {info.filename: info for info in zf.infolist()}
        for relative in SHIPPED:
            info = infos[f"hepscale/_resources/{relative}"]
            mode = info.external_attr >> 16
            assert not stat.S_ISLNK(mode) and zf.read(info) == (ROOT / relative).read_bytes(), relative
        assert infos["hepscale/_resources/condor/hepscale_job.sh"].external_attr >> 16 & stat.S_IXUSR
        for name in ("hepscale/resources.py", "hepscale/py.typed", "processors/__init__.py", "processors/jets.py"):
            assert name in infos
        assert not [name for name in infos if name.startswith(("hepscale/data/", "tests/"))]

    target = tmp_path / "target"
    _run([*pip, "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel)], cwd=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}
    check = (
        "import hepscale, processors\n"
        "from hepscale.condor import load_site, wrapper_path\n"
        "from hepscale.models.sizes import model_sizes\n"
        "from hepscale.quickstart import QUICKSTART_STUDY\n"
        "from hepscale.resources import project_file\n"
        "print(hepscale.__file__, processors.__file__, wrapper_path(), project_file(QUICKSTART_STUDY), sep='\\n')\n"
        "print(load_site('generic-gpu').name, len(model_sizes()))\n"
    )
    *paths, last = _run([sys.executable, "-c", check], cwd=empty, env=env).splitlines()
    for path in paths:  # the wheel is imported, not the checkout, and finds its files in itself
        assert Path(path).resolve().is_relative_to(target.resolve()), path
    assert last == f"generic-gpu {len(model_sizes())}"

    args = ["-m", "hepscale", "quickstart", "--jets-only", "--events", "60", "--workers", "1", "--no-progress"]
    out = _run([sys.executable, *args], cwd=empty, env=env)
    assert "jets:" in out
    assert (empty / "hepscale-output" / "quickstart-jets" / "jets" / "jets.parquet").is_file()
