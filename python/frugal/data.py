"""Images and datasets read by frugal's decoders (PNG/JPEG/BMP, IDX, Fashion-MNIST, image folders, CSV label
lists) into numpy arrays: the same pixels the CLI trains and predicts on."""
import ctypes
import os
from collections import namedtuple

import numpy as np

from . import _lib

__all__ = ["load_image", "load_images", "load_dataset", "Dataset"]

Dataset = namedtuple("Dataset", "images labels class_names")
Dataset.__doc__ = "images uint8 [N, H, W, C], labels int32 [N] (-1 = unlabelled), class_names list of str"


def _size(size, what):
    if size is None:
        return 0, 0
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        size = (size, size)
    if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in size):
        raise ValueError(f"{what}: size must be an int or (height, width) of positive ints, got {size!r}")
    return int(size[0]), int(size[1])


def _channels(channels, what):
    if not isinstance(channels, (int, np.integer)) or isinstance(channels, bool) or not 0 <= channels <= 4:
        raise ValueError(f"{what}: channels must be 0 (as stored) or 1..4, got {channels!r}")
    return int(channels)


def load_image(path, channels=3, size=None):
    """One image file as uint8 [H, W, C]: `channels` 1..4 (0 = as stored), brought to size = (height, width) or
    an int when given as `frugal predict` and datasets read it (shorter side resized, centre cropped)."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"load_image: path must be a file path, got {type(path).__name__}")
    c = _channels(channels, "load_image")
    h, w = _size(size, "load_image")
    pix, oc, oh, ow = ctypes.c_void_p(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
    _lib.call("fr_image_load", _lib.encode(path), c, h, w, 0, ctypes.byref(pix), ctypes.byref(oc), ctypes.byref(oh),
              ctypes.byref(ow))
    try:
        return np.ctypeslib.as_array(ctypes.cast(pix, ctypes.POINTER(ctypes.c_uint8)),
                                     (oh.value, ow.value, oc.value)).copy()
    finally:
        _lib.lib.fr_free(pix)


def load_images(paths, channels=3, size=None):
    """Image files as one uint8 batch [N, H, W, C] (they must share a size unless size= is given)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise TypeError("load_images: expected a list of paths (load_image reads one)")
    imgs = [load_image(p, channels, size) for p in paths]
    if not imgs:
        raise ValueError("load_images: no paths given")
    if any(im.shape != imgs[0].shape for im in imgs):
        raise ValueError("load_images: the images differ in size; give size=(height, width)")
    return np.stack(imgs)


def load_dataset(spec, channels=0, size=None, skip_bad=False):
    """A dataset as the CLI's --data opens it: "fmnist", "fmnist:test", "idx:IMAGES[,LABELS]",
    "folder:DIR" (DIR/<class>/<image>), "csv:FILE". Returns Dataset(images, labels, class_names)."""
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"load_dataset: spec must be a string such as 'folder:DIR', got {spec!r}")
    c = _channels(channels, "load_dataset")
    h, w = _size(size, "load_dataset")
    ds = ctypes.c_void_p()
    _lib.call("fr_dataset_open_size", _lib.encode(spec), c, h, w, int(bool(skip_bad)), ctypes.byref(ds))
    try:
        n, v = ctypes.c_int64(), [ctypes.c_int() for _ in range(4)]
        _lib.lib.fr_dataset_info(ds, ctypes.byref(n), *(ctypes.byref(x) for x in v))
        c, h, w, k = (x.value for x in v)
        images = np.empty((n.value, h, w, c), np.uint8)
        labels = np.empty(n.value, np.int32)
        _lib.call("fr_dataset_copy", ds, images.ctypes.data, labels.ctypes.data)  # decodes folders and CSV lists
        names = [_lib.lib.fr_dataset_class_name(ds, i).decode(errors="replace") for i in range(k)]
    finally:
        _lib.lib.fr_dataset_free(ds)
    return Dataset(images, labels, names)
