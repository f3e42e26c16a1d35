"""frugal from Python: batch augmentation of numpy arrays, models that load frugal checkpoints or PyTorch
weights, devices and benchmarks, over the C library libfrugal (ctypes, no compiled extension).

    import frugal
    aug = frugal.Augment("randaugment(n=2,m=9);cutmix(alpha=1)", seed=1, n_classes=10)
    out, soft = aug(images_uint8_nhwc, labels)
    model = frugal.Model("runs/s/model.safetensors")
    logits = model.predict(images_uint8_nhwc)

The library is found through $FRUGAL_LIB, the build tree of this checkout, or the install prefix
(frugal.library_path says which). frugal.torch has a collate function and a transform for PyTorch; torch is
imported only by that module."""
from . import errors
from ._lib import path as library_path
from .augment import Augment
from .data import Dataset, load_dataset, load_image, load_images
from .errors import (DeviceError, Error, FileError, FormatError, Interrupted, InvalidArgument, LibraryNotFound,
                     NotFound, NumericError, OutOfMemory, ShapeError, Unsupported)
from .model import Model
from .system import bench, devices, set_threads, version

__version__ = version()

__all__ = ["Augment", "Model", "devices", "bench", "set_threads", "version", "load_image", "load_images",
           "load_dataset", "Dataset", "library_path", "errors", "Error", "InvalidArgument", "ShapeError",
           "OutOfMemory", "FileError", "FormatError", "Unsupported", "DeviceError", "NumericError", "Interrupted",
           "NotFound", "LibraryNotFound", "__version__"]
