"""Models: a frugal checkpoint, or a built-in architecture / model file with plain safetensors weights
(e.g. exported from PyTorch), for prediction and evaluation on uint8 NHWC images."""
import ctypes
import os

import numpy as np

from . import _arrays, _lib
from ._handle import Handle

__all__ = ["Model"]


class Model(Handle):
    """A network on a device.

        m = frugal.Model("runs/s/model.safetensors")                    # a frugal checkpoint
        m = frugal.Model("w.safetensors", arch="net.txt", input_shape=(3, 32, 32),
                         class_names=["cat", "dog"])                     # model file (or t/s/m) + weights
        logits = m.predict(images)            # uint8 [N, H, W, C] -> float32 [N, n_classes]
        m.evaluate(images, labels)["accuracy"]

    Training runs through the CLI (`frugal train/finetune/distill/noisy-student`); its checkpoints load
    here. Images are scaled and normalised on the device, (x/255 - mean[c]) / std[c], with the checkpoint's
    values (x/255 by default) or mean= and std= (one value or one per channel: a PyTorch model's
    transforms.Normalize)."""

    def __init__(self, path, *, arch=None, input_shape=None, class_names=None, mean=None, std=None, device="auto",
                 threads=None):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"Model: path must be a file path, got {type(path).__name__}")
        if arch is not None:
            if not isinstance(arch, (str, os.PathLike)):
                raise TypeError(f"Model: arch must be t, s, m or a model-file path, got {arch!r}")
            if input_shape is None or len(input_shape) != 3 or not all(
                    isinstance(v, (int, np.integer)) and v >= 1 for v in input_shape):
                raise ValueError("Model: plain weights need input_shape=(C, H, W) with positive ints, "
                                 f"got {input_shape!r}")
            if not 1 <= input_shape[0] <= 4:
                raise ValueError(f"Model: input_shape channels must be 1..4, got {input_shape[0]}")
        elif input_shape is not None:
            raise ValueError("Model: input_shape is read from the checkpoint; it goes with arch= and plain weights")
        if class_names is not None:
            class_names = [str(s) for s in class_names]
        if (mean is None) != (std is None):
            raise ValueError("Model: give both mean= and std= (or neither)")
        norm = None
        if mean is not None:
            norm = tuple(tuple(float(v) for v in np.atleast_1d(np.asarray(a, np.float64)).ravel()) for a in (mean, std))
            if not all(1 <= len(a) <= 4 for a in norm) or not all(v > 0 and np.isfinite(v) for v in norm[1]) \
                    or not all(np.isfinite(v) for v in norm[0]):
                raise ValueError(f"Model: mean and std need 1..4 finite values, std > 0; got {mean!r}, {std!r}")
        self._config = dict(path=os.fspath(path), arch=None if arch is None else os.fspath(arch),
                            input_shape=None if input_shape is None else tuple(int(v) for v in input_shape),
                            class_names=class_names, mean=None if norm is None else norm[0],
                            std=None if norm is None else norm[1], device=device, threads=threads)
        self._net = None
        self._start(device, threads)

    def _open(self):
        cfg, net = self._config, ctypes.c_void_p()
        if cfg["arch"] is None:
            _lib.call("fr_net_load", self._be, _lib.encode(cfg["path"]), ctypes.byref(net))
        else:
            c, h, w = cfg["input_shape"]
            _lib.call("fr_net_load_weights", self._be, _lib.encode(cfg["arch"]), _lib.encode(cfg["path"]), c, h, w,
                      ctypes.byref(net))
        self._net = net
        v = [ctypes.c_int() for _ in range(4)]
        _lib.lib.fr_net_info(net, *(ctypes.byref(x) for x in v))
        self._c, self._h, self._w, self._k = (x.value for x in v)
        if cfg["mean"] is not None:
            for a in (cfg["mean"], cfg["std"]):
                if len(a) not in (1, self._c):
                    raise ValueError(f"Model: {len(a)} mean/std values for {self._c} channels")
            m4, s4 = ((ctypes.c_float * 4)(*(a * 4 if len(a) == 1 else a + (a[-1],) * (4 - len(a))))
                      for a in (cfg["mean"], cfg["std"]))
            _lib.call("fr_net_set_normalize", net, m4, s4)
        names = cfg["class_names"]
        if names is not None and len(names) != self._k:
            raise ValueError(f"Model: {len(names)} class names for a model with {self._k} classes")
        self._names = names or [_lib.lib.fr_net_class_name(net, i).decode(errors="replace") for i in range(self._k)]
        self._arch = _lib.lib.fr_net_arch_name(net).decode(errors="replace")

    def _forget(self):
        self._net = None

    def _free(self):
        if self._net:
            _lib.lib.fr_net_free(self._net)

    @property
    def n_classes(self):
        return self._k

    @property
    def class_names(self):
        """Names of the classes, in logit order (from the checkpoint, class_names= or "0".."K-1")."""
        return list(self._names)

    @property
    def input_shape(self):
        """(C, H, W) of the network's input; predict() takes uint8 images [N, H, W, C]."""
        return (self._c, self._h, self._w)

    @property
    def normalize(self):
        """(mean, std) per channel applied on the device: (x/255 - mean[c]) / std[c]."""
        buf = ctypes.create_string_buffer(256)
        with self._lock:
            self._ensure()
            text = _lib.lib.fr_net_normalize_str(self._net, buf, 256).decode()
        mean, std = (tuple(float(v) for v in part.split("=")[1].split(",")[:self._c]) for part in text.split(";"))
        return mean, std

    @property
    def arch(self):
        """The built-in architecture name or the model file's basename."""
        return self._arch

    def predict(self, images):
        """Logits float32 [N, n_classes] of uint8 images [N, H, W, C] of the model's input size."""
        x = _arrays.images_u8(images, "Model.predict", (self._h, self._w, self._c))
        logits = np.empty((x.shape[0], self._k), np.float32)
        with self._lock:
            self._ensure()
            _lib.call("fr_net_predict_u8", self._net, x.ctypes.data, x.shape[0], logits.ctypes.data)
        return logits

    def evaluate(self, images, labels):
        """Accuracy, mean cross-entropy loss, per-class accuracy and confusion matrix on labelled images (the
        numbers of `frugal eval`); labels -1 are skipped. Returns a dict with "accuracy", "loss", "images"
        (how many were labelled), "per_class_accuracy" (NaN for a class without images),
        "confusion_matrix" (int64 [K, K], row = true class) and "class_names"."""
        x = _arrays.images_u8(images, "Model.evaluate", (self._h, self._w, self._c))
        y = _arrays.int_labels(labels, x.shape[0], "Model.evaluate", -1, self._k)
        k = self._k
        acc, loss, used = ctypes.c_double(), ctypes.c_double(), ctypes.c_int64()
        per_class = np.empty(k, np.float64)
        confusion = np.empty((k, k), np.int64)
        with self._lock:
            self._ensure()
            _lib.call("fr_net_evaluate_u8", self._net, x.ctypes.data, y.ctypes.data, x.shape[0], ctypes.byref(acc),
                      ctypes.byref(loss), ctypes.byref(used), per_class.ctypes.data, confusion.ctypes.data)
        return {"accuracy": acc.value, "loss": loss.value, "images": used.value,
                "per_class_accuracy": per_class.tolist(), "confusion_matrix": confusion,
                "class_names": self.class_names}

    def __repr__(self):
        return (f"frugal.Model({self._config['path']!r}, arch={self._arch!r}, input_shape={self.input_shape}, "
                f"n_classes={self._k})")
