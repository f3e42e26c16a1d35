"""Batch augmentation of uint8 NHWC numpy arrays with frugal's policies: one C call per batch (the same graph
ops as `frugal augment` and training), reproducible by (seed, step, sample)."""
import ctypes

import numpy as np

from . import _arrays, _lib
from ._handle import Handle

__all__ = ["Augment"]

_U32 = 1 << 32
_CACHED = 4  # augmenters kept for different image sizes
_DTYPES = {0: np.float32, 1: np.uint8}  # enum fr_dtype: FR_F32, FR_U8


def _u32(v, what):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or not 0 <= v < _U32:
        raise ValueError(f"Augment: {what} must be an int in 0..2^32-1, got {v!r}")
    return int(v)


class Augment(Handle):
    """A policy run on batches of uint8 images [N, H, W, C] (C = 1..4).

        aug = frugal.Augment("randaugment(n=2,m=9);cutmix(alpha=1)", seed=1, n_classes=10)
        out, soft = aug(images, labels)      # uint8 [N, H', W', C], float32 [N, 10] mixed labels
        out = aug(images, step=7)            # exactly what step 7 gave, on any device and thread count

    Policies are those of `frugal augment --policy` and `frugal train --augment`. A policy ending in
    normalize(mean=..., std=...) gives float32 [N, C, H', W'] (PyTorch layout) instead, unless
    normalize=False. Each call is one step: `step` counts up from 0 unless given; sample i of a call is
    sample first_sample + i of that step. The input is not copied when it is C-contiguous; the GIL is
    released during the call. device: "auto" (a GPU if there is one, else the CPU path), "cpu" or
    "cl:P:D"; threads: CPU threads of the CPU path (None = FRUGAL_THREADS or every core)."""

    def __init__(self, policy, seed=0, device="auto", threads=None, n_classes=0, normalize=True):
        if not isinstance(policy, str):
            raise TypeError(f"Augment: policy must be a string such as 'randaugment(n=2,m=9)', got {policy!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 1 << 64:
            raise ValueError(f"Augment: seed must be an int in 0..2^64-1, got {seed!r}")
        n_classes = _arrays.positive_int(n_classes, "Augment: n_classes", allow_zero=True)
        self._config = dict(policy=policy, seed=int(seed), device=device, threads=threads, n_classes=n_classes,
                            normalize=bool(normalize))
        self.step = 0
        self._aug = {}  # (h, w, c) -> (handle, batch capacity, (out_h, out_w, dtype, layout))
        self._start(device, threads)

    def _open(self):
        pol = ctypes.c_void_p()  # parse now, so a bad policy fails here and not at the first batch
        _lib.call("fr_aug_policy_parse", _lib.encode(self._config["policy"]), ctypes.byref(pol))
        self._mixes = _lib.lib.fr_aug_policy_mix(pol) is not None
        _lib.lib.fr_aug_policy_free(pol)

    def _forget(self):
        self._aug = {}

    def _free(self):
        for a, _, _ in self._aug.values():
            _lib.lib.fr_augmenter_free(a)

    @property
    def policy(self):
        return self._config["policy"]

    @property
    def seed(self):
        return self._config["seed"]

    @property
    def mixes(self):
        """Whether the policy mixes images (cutmix/mixup): then labels should be given."""
        return self._mixes

    @property
    def n_classes(self):
        return self._config["n_classes"]

    def _augmenter(self, n, h, w, c):
        """(handle, output geometry) of the C augmenter for images h x w x c that takes at least n per call
        (made on first use)."""
        a, cap, geo = self._aug.get((h, w, c), (None, 0, None))
        if a is not None and n <= cap:
            return a, geo
        if a is not None:
            _lib.lib.fr_augmenter_free(a)
            del self._aug[(h, w, c)]
        while len(self._aug) >= _CACHED:  # the oldest size goes
            old = next(iter(self._aug))
            _lib.lib.fr_augmenter_free(self._aug.pop(old)[0])
        cfg = self._config
        o = _lib.AugmenterOpts(policy=_lib.encode(cfg["policy"]), seed=cfg["seed"], batch=n, h=h, w=w, c=c,
                               n_classes=cfg["n_classes"], no_normalize=0 if cfg["normalize"] else 1)
        a = ctypes.c_void_p()
        _lib.call("fr_augmenter_new", self._be, ctypes.byref(o), ctypes.byref(a))
        v = [ctypes.c_int() for _ in range(4)]
        _lib.lib.fr_augmenter_output(a, *(ctypes.byref(x) for x in v))
        geo = tuple(x.value for x in v)
        self._aug[(h, w, c)] = (a, n, geo)
        return a, geo

    def output_shape(self, images_shape):
        """(shape, dtype) of the result for input images of shape [N, H, W, C]."""
        n, h, w, c = images_shape
        with self._lock:
            self._ensure()
            oh, ow, t, lay = self._augmenter(1, h, w, c)[1]
        return ((n, c, oh, ow) if lay else (n, oh, ow, c)), _DTYPES[t]

    def __call__(self, images, labels=None, *, step=None, first_sample=0, out=None):
        """Augments a batch: returns the new images, or (images, soft_labels float32 [N, n_classes]) when
        integer labels are given (mixed by the policy's cutmix/mixup, one-hot otherwise). out: an array of
        the result's shape and dtype to write into instead of a new one."""
        x = _arrays.images_u8(images, "Augment")
        n, h, w, c = x.shape
        if n >= 1 << 31:
            raise ValueError(f"Augment: {n} images in one batch is too many")
        y = None
        k = self._config["n_classes"]
        if labels is not None:
            if k == 0:
                raise ValueError("Augment: labels need the class count: Augment(..., n_classes=K)")
            y = _arrays.int_labels(labels, n, "Augment", 0, k)
        if step is not None:
            step = _u32(step, "step")
        first = _u32(first_sample, "first_sample")
        if first + n > _U32:
            raise ValueError(f"Augment: samples {first}..{first + n - 1} run past 2^32")
        with self._lock:
            s = self.step if step is None else step
            self._ensure()
            a, (oh, ow, t, lay) = self._augmenter(n, h, w, c)
            shape, dtype = ((n, c, oh, ow) if lay else (n, oh, ow, c)), _DTYPES[t]
            if out is None:
                out = np.empty(shape, dtype)
            elif not isinstance(out, np.ndarray) or out.shape != shape or out.dtype != dtype \
                    or not out.flags.c_contiguous or not out.flags.writeable:
                raise ValueError(f"Augment: out must be a writeable C-contiguous {np.dtype(dtype)} array of shape "
                                 f"{shape}")
            soft = np.empty((n, k), np.float32) if y is not None else None
            _lib.call("fr_augmenter_run", a, s, first, n, x.ctypes.data, out.ctypes.data, _arrays.ptr(y),
                      _arrays.ptr(soft))
            if step is None:
                self.step = (s + 1) % _U32
        return out if y is None else (out, soft)

    def __getstate__(self):
        return {"config": self._config, "step": self.step}

    def __setstate__(self, state):
        super().__setstate__(state)
        self.step = state["step"]

    def __repr__(self):
        cfg = self._config
        return f"frugal.Augment({cfg['policy']!r}, seed={cfg['seed']}, device={cfg['device']!r})"
