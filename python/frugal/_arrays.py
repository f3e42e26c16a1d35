"""Checks of array arguments, made in Python before any C call: dtype, shape, memory layout."""
import numpy as np

__all__ = ["images_u8", "int_labels", "c_array", "ptr", "positive_int"]


def c_array(a):
    """`a` itself when it is C-contiguous (no copy), else a C-contiguous copy."""
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


def ptr(a):
    """Address of an array's data for a void * argument (None for no array)."""
    return None if a is None else a.ctypes.data


def images_u8(x, what, hwc=None):
    """A C-contiguous uint8 [N, H, W, C] array (C = 1..4, N >= 1) from an ndarray or anything with
    __array__ (a CPU torch tensor), refusing other dtypes and shapes; hwc = (H, W, C) it must have."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype != np.uint8:
        raise TypeError(f"{what}: images must be uint8 (0..255), got {a.dtype}")
    if a.ndim != 4:
        hint = " (one image: add a batch axis, x[None]; grey images: add a channel axis, x[..., None])" \
            if a.ndim in (2, 3) else ""
        raise ValueError(f"{what}: images must be a batch [N, H, W, C], got shape {tuple(a.shape)}{hint}")
    n, h, w, c = a.shape
    if n < 1 or h < 1 or w < 1 or not 1 <= c <= 4:
        raise ValueError(f"{what}: images [N, H, W, C] need N, H, W >= 1 and C in 1..4, got shape {tuple(a.shape)}")
    if hwc is not None and (h, w, c) != tuple(hwc):
        raise ValueError(f"{what}: images are {h}x{w}x{c} (H x W x C), expected {hwc[0]}x{hwc[1]}x{hwc[2]}")
    return c_array(a)


def int_labels(y, n, what, low=-1, high=None):
    """A C-contiguous int32 [n] array of integer labels in [low, high)."""
    a = y if isinstance(y, np.ndarray) else np.asarray(y)
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"{what}: labels must be integers, got {a.dtype}")
    if a.shape != (n,):
        raise ValueError(f"{what}: labels must have shape ({n},) for {n} images, got {tuple(a.shape)}")
    if n and (a.min() < low or (high is not None and a.max() >= high)):
        bad = a[(a < low) | (a >= high if high is not None else False)][0]
        rng = f"{low}..{high - 1}" if high is not None else f">= {low}"
        raise ValueError(f"{what}: label {int(bad)} is out of range ({rng})")
    return c_array(a.astype(np.int32, copy=False))


def positive_int(v, what, allow_zero=False):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < (0 if allow_zero else 1):
        raise ValueError(f"{what} must be an int >= {0 if allow_zero else 1}, got {v!r}")
    return int(v)
