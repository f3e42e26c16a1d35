"""The package itself: library loading, version, no torch import, the GIL released, pip install."""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import needs_numpy

needs_numpy()
import frugal  # noqa: E402
from frugal import _lib  # noqa: E402

PY = Path(__file__).resolve().parents[1]
REPO = PY.parent


def test_version_is_the_librarys_and_the_packages():
    meson = re.search(r"version\s*:\s*'([^']+)'", (REPO / "meson.build").read_text()).group(1)
    pyproject = re.search(r'^version\s*=\s*"([^"]+)"', (PY / "pyproject.toml").read_text(), re.M).group(1)
    assert frugal.__version__ == frugal.version() == meson == pyproject


def test_library_path_is_a_loaded_libfrugal():
    assert Path(frugal.library_path).name.startswith("libfrugal")
    assert Path(frugal.library_path).exists()


def run_py(code, **env):
    e = dict(os.environ, PYTHONPATH=str(PY), **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=e, cwd="/")


def test_frugal_lib_overrides_and_a_bad_path_is_a_clear_import_error(tmp_path):
    r = run_py("import frugal; print(frugal.library_path)", FRUGAL_LIB=frugal.library_path)
    assert r.returncode == 0 and r.stdout.strip() == frugal.library_path
    r = run_py("import frugal", FRUGAL_LIB=str(tmp_path / "nope.so"))
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "LibraryNotFound" in last and "nope.so: no such file" in last


def test_import_does_not_import_torch():
    r = run_py("import sys, frugal; frugal.devices(); print('torch' in sys.modules)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"


def test_calls_release_the_gil():
    # ctypes.CDLL (not PyDLL) drops the GIL around every foreign call
    assert type(_lib.lib) is ctypes.CDLL
    assert not _lib.lib.fr_version._flags_ & ctypes._FUNCFLAG_PYTHONAPI


def test_pip_install_into_a_venv_finds_the_library_in_its_prefix(tmp_path):
    """`pip install ./python` into a virtual environment whose prefix holds libfrugal (as `meson install
    --prefix VENV` puts it there): the installed package loads it without FRUGAL_LIB."""
    venv = tmp_path / "venv"
    r = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot make a venv (Debian: python3-venv): {r.stderr.strip().splitlines()[-1:]}")
    py = venv / "bin" / "python"
    src = tmp_path / "src"  # a copy: pip builds in the tree it is given
    shutil.copytree(PY, src, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__", ".*"))
    r = subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", "--no-index",
                        str(src)], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    multiarch = sysconfig.get_config_var("MULTIARCH")
    libdir = venv / "lib" / multiarch if multiarch else venv / "lib"
    libdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(frugal.library_path, libdir / "libfrugal.so")
    env = {k: v for k, v in os.environ.items() if k not in ("FRUGAL_LIB", "FRUGAL_BUILD_DIR", "PYTHONPATH")}
    r = subprocess.run([str(py), "-c", "import frugal; print(frugal.__file__); print(frugal.library_path); "
                        "print(frugal.__version__)"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pkg, lib, version = r.stdout.split()
    assert pkg.startswith(str(venv)) and lib == str(libdir / "libfrugal.so") and version == frugal.__version__
