"""Finds and loads libfrugal with ctypes, declares the C prototypes and turns failed calls into exceptions.

Search order: $FRUGAL_LIB (a path to libfrugal.so); the build tree of the checkout this package sits in
($FRUGAL_BUILD_DIR or <repo>/build); the install prefix: lib/<multiarch>, lib64 and lib under sys.prefix
(a venv or conda environment), the dynamic loader's search path (ldconfig, LD_LIBRARY_PATH), then the same
directories under /usr/local and /usr. ctypes.CDLL releases the GIL
during every call, so frugal work in one Python thread does not stop the others."""
import ctypes
import os
import sys
import sysconfig
from ctypes import POINTER, c_char_p, c_double, c_float, c_int, c_int64, c_uint32, c_uint64, c_void_p
from pathlib import Path

from .errors import LibraryNotFound, from_status

__all__ = ["lib", "path", "check", "call", "text", "PROGRESS_FN", "AugmenterOpts"]

LIBNAME = "libfrugal.so"
PROGRESS_FN = ctypes.CFUNCTYPE(None, c_char_p, c_void_p)
vp = c_void_p
ip = POINTER(c_int)


class AugmenterOpts(ctypes.Structure):
    """struct fr_augmenter_opts (include/frugal/augment.h)."""
    _fields_ = [("policy", c_char_p), ("seed", c_uint64), ("batch", c_int), ("h", c_int), ("w", c_int),
                ("c", c_int), ("n_classes", c_int), ("no_normalize", c_int)]


# name: (restype, argtypes); int = enum fr_status
PROTOTYPES = {
    "fr_version": (c_char_p, []),
    "fr_status_str": (c_char_p, [c_int]),
    "fr_last_error": (c_char_p, []),
    "fr_clear_error": (None, []),
    "fr_free": (None, [vp]),
    "fr_set_threads": (None, [c_int]),
    "fr_backend_open_threads": (c_int, [c_char_p, c_int, POINTER(vp)]),
    "fr_backend_free": (None, [vp]),
    "fr_backend_name": (c_char_p, [vp]),
    "fr_devices_json": (c_int, [POINTER(vp)]),
    "fr_bench_json": (c_int, [c_char_p, c_char_p, c_double, c_int, c_int, PROGRESS_FN, vp, POINTER(vp)]),
    "fr_net_load": (c_int, [vp, c_char_p, POINTER(vp)]),
    "fr_net_load_weights": (c_int, [vp, c_char_p, c_char_p, c_int, c_int, c_int, POINTER(vp)]),
    "fr_net_free": (None, [vp]),
    "fr_net_info": (None, [vp, ip, ip, ip, ip]),
    "fr_net_class_name": (c_char_p, [vp, c_int]),
    "fr_net_arch_name": (c_char_p, [vp]),
    "fr_net_fallback_ops": (c_int, [vp]),
    "fr_net_predict_u8": (c_int, [vp, vp, c_int64, vp]),
    "fr_net_set_normalize": (c_int, [vp, POINTER(c_float), POINTER(c_float)]),
    "fr_net_normalize_str": (c_char_p, [vp, c_char_p, ctypes.c_size_t]),
    "fr_net_evaluate_u8": (c_int, [vp, vp, vp, c_int64, POINTER(c_double), POINTER(c_double), POINTER(c_int64), vp,
                                   vp]),
    "fr_dataset_open_size": (c_int, [c_char_p, c_int, c_int, c_int, c_int, POINTER(vp)]),
    "fr_dataset_free": (None, [vp]),
    "fr_dataset_info": (None, [vp, POINTER(c_int64), ip, ip, ip, ip]),
    "fr_dataset_copy": (c_int, [vp, vp, vp]),
    "fr_dataset_class_name": (c_char_p, [vp, c_int]),
    "fr_image_load": (c_int, [c_char_p, c_int, c_int, c_int, c_int, POINTER(vp), ip, ip, ip]),
    "fr_aug_policy_parse": (c_int, [c_char_p, POINTER(vp)]),
    "fr_aug_policy_free": (None, [vp]),
    "fr_aug_policy_mix": (vp, [vp]),
    "fr_augmenter_new": (c_int, [vp, POINTER(AugmenterOpts), POINTER(vp)]),
    "fr_augmenter_free": (None, [vp]),
    "fr_augmenter_output": (None, [vp, ip, ip, ip, ip]),
    "fr_augmenter_run": (c_int, [vp, c_uint32, c_uint32, c_int, vp, vp, vp, vp]),
}


def _candidates():
    env = os.environ.get("FRUGAL_LIB")
    if env:
        return [Path(env)], True
    out = []
    build = os.environ.get("FRUGAL_BUILD_DIR")
    repo = Path(__file__).resolve().parents[2]
    if build:
        out.append((Path(build) if Path(build).is_absolute() else repo / build) / LIBNAME)
    if (repo / "meson.build").is_file():
        out.append(repo / "build" / LIBNAME)
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    libdirs = [d for d in ("lib/" + multiarch if multiarch else None, "lib64", "lib") if d]
    out += [Path(sys.prefix) / d / LIBNAME for d in libdirs]  # installed with this Python (a venv, conda)
    out.append(Path(LIBNAME))  # the dynamic loader's search path (ldconfig, LD_LIBRARY_PATH)
    out += [Path(p) / d / LIBNAME for p in ("/usr/local", "/usr") if p != sys.prefix for d in libdirs]
    return out, False


def _load():
    cands, explicit = _candidates()
    errors = []
    for p in cands:
        if p.is_absolute() and not p.exists():
            errors.append(f"{p}: no such file")
            continue
        try:
            dll = ctypes.CDLL(str(p))
        except OSError as e:
            errors.append(str(e))
            continue
        missing = [n for n in PROTOTYPES if not hasattr(dll, n)]
        if missing:
            errors.append(f"{p}: lacks {', '.join(missing)} (older than this Python package: rebuild frugal)")
            if explicit:
                break
            continue
        for name, (res, args) in PROTOTYPES.items():
            fn = getattr(dll, name)
            fn.restype, fn.argtypes = res, args
        return dll, str(p)
    hint = "FRUGAL_LIB" if explicit else "set FRUGAL_LIB=/path/to/libfrugal.so, build frugal in <repo>/build or install it"
    raise LibraryNotFound(f"cannot load libfrugal ({hint}): " + "; ".join(errors))


lib, path = _load()
def check(status):
    """Raises the exception for a non-zero status with frugal's thread-local message."""
    if status:
        msg = lib.fr_last_error()
        msg = msg.decode(errors="replace") if msg else ""
        raise from_status(status, msg or lib.fr_status_str(status).decode())


def call(name, *args):
    """lib.<name>(*args), raising on a non-zero status."""
    check(getattr(lib, name)(*args))


def text(ptr):
    """Python str of a malloc'd C string from frugal, which is freed."""
    try:
        return ctypes.string_at(ptr).decode(errors="replace")
    finally:
        lib.fr_free(ptr)


def encode(s):
    """bytes for a char * argument (paths keep undecodable bytes); None stays NULL."""
    return None if s is None else os.fsencode(s)
