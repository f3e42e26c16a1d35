"""Shared fixtures: the frugal CLI next to the library (the reference for bytes and logits), a small
checkpoint trained by the CLI, Fashion-MNIST test images and a PNG writer (frugal's own)."""
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# each test module starts with needs_numpy(): without numpy every module is skipped with that reason
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
try:
    import numpy as np
except ImportError as e:
    np = None
    MISSING = str(e)
if np is not None:  # a library that does not load is a failure, not a skip
    import frugal
    from frugal import _lib


def needs_numpy():
    if np is None:
        pytest.skip(f"frugal's Python package needs numpy (Debian: python3-numpy): {MISSING}", allow_module_level=True)


def cli_path():
    exe = os.environ.get("FRUGAL_EXE") or str(Path(frugal.library_path).parent / "tools" / "frugal")
    return exe if os.access(exe, os.X_OK) else None


@pytest.fixture(scope="session")
def cli():
    """Runs the frugal CLI: cli(args...) -> CompletedProcess (text); skips when it is not built."""
    exe = cli_path()
    if not exe:
        pytest.skip("the frugal CLI is not built next to the library (set FRUGAL_EXE)")

    def run(*args, check=True):
        r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
        if check and r.returncode != 0:
            raise AssertionError(f"frugal {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def fmnist_test():
    """The first 64 Fashion-MNIST test images and labels (skips when the dataset is not installed)."""
    try:
        ds = frugal.load_dataset("fmnist:test")
    except frugal.Error as e:
        pytest.skip(f"Fashion-MNIST is not installed (dataset-fashion-mnist): {e}")
    return ds.images[:64], ds.labels[:64], ds.class_names


@pytest.fixture(scope="session")
def checkpoint(cli, fmnist_test, tmp_path_factory):
    """A model t trained for one epoch on 500 Fashion-MNIST labels by the CLI, one thread."""
    out = tmp_path_factory.mktemp("run")
    cli("train", "--data", "fmnist", "--labels", 500, "--model", "t", "--epochs", 1, "--test-limit", 100,
        "--threads", 1, "--seed", 3, "--out", out)
    return out / "model.safetensors"


def write_png(path, pixels):
    """uint8 [H, W, C] to a PNG file with frugal's writer (lossless)."""
    a = np.ascontiguousarray(pixels, np.uint8)
    h, w, c = a.shape
    fn = _lib.lib.fr_aug_write_png
    fn.argtypes, fn.restype = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int], ctypes.c_int
    _lib.check(fn(os.fsencode(path), a.ctypes.data, h, w, c))


def cli_json(result):
    """The JSON object a CLI command printed with --json (its last stdout line block)."""
    return json.loads(result.stdout)
