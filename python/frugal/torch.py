"""PyTorch helpers (this module imports torch; `import frugal` alone does not): a DataLoader collate function
that augments each batch with one frugal call in the worker process, and a per-image transform.

    from frugal.torch import Collate
    collate = Collate("randaugment(n=2,m=9);cutmix(alpha=1);normalize(mean=0.5,std=0.25)", n_classes=10)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=2, collate_fn=collate)
    for images, targets in loader:     # float32 [64, C, H, W], soft targets float32 [64, 10]
        loss = F.cross_entropy(model(images), targets)
"""
import os

import numpy as np
import torch

from .augment import Augment

__all__ = ["Collate", "Transform", "as_hwc"]

_GOLDEN = 0x9E3779B97F4A7C15
_M64 = (1 << 64) - 1


def as_hwc(image):
    """One image as a uint8 numpy array [H, W, C]: a PIL image, a numpy array [H, W, C] or [H, W], or a
    torch tensor [C, H, W] or [H, W] (torchvision's layout, e.g. from PILToTensor or read_image)."""
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.dtype != torch.uint8:
            raise TypeError(f"frugal.torch: image tensors must be uint8, got {t.dtype}")
        a = t.numpy()
        if a.ndim == 3:
            a = a.transpose(1, 2, 0)
    else:
        a = np.asarray(image)  # PIL images give [H, W(, C)]
        if a.dtype != np.uint8:
            raise TypeError(f"frugal.torch: images must be uint8, got {a.dtype}")
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or not 1 <= a.shape[2] <= 4:
        raise ValueError(f"frugal.torch: expected one image [H, W, C] (tensors [C, H, W]), got shape {a.shape}")
    return a


def _to_torch(out):
    """A torch view of frugal's output: float32 NCHW stays, uint8 NHWC becomes an NCHW view (channels_last)."""
    t = torch.from_numpy(out)
    return t if out.dtype == np.float32 else t.permute(0, 3, 1, 2)


class _PerProcess:
    """Seed, step and Augment of the current process: in a DataLoader worker the worker's own (re-made after
    the fork), with seed=None taken from torch's per-iterator seed so each epoch differs and
    torch.manual_seed reproduces it."""

    def __init__(self, policy, seed, n_classes, device, threads, normalize):
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= _M64):
            raise ValueError(f"frugal.torch: seed must be None or an int in 0..2^64-1, got {seed!r}")
        self._args = dict(policy=policy, n_classes=n_classes, device=device, threads=threads, normalize=normalize)
        self.seed, self.epoch = seed, 0
        self._pid, self._aug, self._count = None, None, 0
        check = Augment(policy, 0, device, threads or 1, n_classes, normalize)  # bad arguments fail here
        self.mixes = check.mixes
        check.close()

    def set_epoch(self, epoch):
        """With an explicit seed: epoch e uses seed + e * 0x9E3779B97F4A7C15 (mod 2^64) and restarts the batch
        count, so every epoch gets new augmentations (call it before each epoch, as
        DistributedSampler.set_epoch)."""
        self.epoch, self._count = int(epoch), 0

    def next(self):
        """(Augment, step) for the next batch of this process."""
        info = torch.utils.data.get_worker_info()
        if self._pid != os.getpid():
            self._pid, self._aug, self._count = os.getpid(), None, 0
        if self.seed is None:
            seed = (info.seed - info.id) & _M64 if info else torch.initial_seed() & _M64
        else:
            seed = (self.seed + self.epoch * _GOLDEN) & _M64
        # the DataLoader hands batch b to worker b % num_workers, in order: step b is the batch index
        step = self._count * info.num_workers + info.id if info else self._count
        self._count += 1
        if self._aug is None or self._aug.seed != seed:
            a = self._args
            threads = a["threads"] or (1 if info else None)  # workers are processes already: one thread each
            self._aug = Augment(a["policy"], seed, a["device"], threads, a["n_classes"], a["normalize"])
        return self._aug, step % (1 << 32)

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_aug"} | {"_aug": None, "_pid": None}


class Collate:
    """collate_fn for torch.utils.data.DataLoader: stacks samples (image, label) or images into one uint8
    batch and augments it with one frugal call (in the worker process when num_workers > 0).

    Returns (images, targets) or images: images float32 [N, C, H, W] when the policy ends with
    normalize(...), else uint8 [N, C, H, W] (an NCHW view of NHWC memory; .float() / 255 scales it);
    targets: soft labels float32 [N, n_classes] when n_classes > 0 (mixed by cutmix/mixup; one-hot
    without them), else the labels as int64 [N]. All images of a batch must share one size.

    seed=None draws the seed from torch (the worker's seed, new for every epoch; torch.manual_seed
    reproduces a run); with a seed, batch b gets step b, and set_epoch(e) changes the seed per epoch.
    device: "cpu" (default: workers are processes, OpenCL devices should be used from the main process or
    with multiprocessing_context="spawn"); threads: CPU threads (default 1 in a worker)."""

    def __init__(self, policy, n_classes=0, seed=None, device="cpu", threads=None, normalize=True):
        self._pp = _PerProcess(policy, seed, n_classes, device, threads, normalize)
        self.n_classes = n_classes
        if self._pp.mixes and not n_classes:
            raise ValueError("frugal.torch.Collate: the policy mixes images (cutmix/mixup): give n_classes so the "
                             "labels are mixed too")

    def set_epoch(self, epoch):
        self._pp.set_epoch(epoch)

    def __call__(self, samples):
        if not samples:
            raise ValueError("frugal.torch.Collate: empty batch")
        labelled = isinstance(samples[0], (tuple, list))
        images = [as_hwc(s[0] if labelled else s) for s in samples]
        if any(im.shape != images[0].shape for im in images):
            raise ValueError("frugal.torch.Collate: the images of a batch differ in size "
                             f"({images[0].shape} and others); resize them in the dataset first")
        batch = np.stack(images)
        aug, step = self._pp.next()
        if not labelled:
            return _to_torch(aug(batch, step=step))
        labels = np.asarray([int(s[1]) for s in samples], np.int64)
        if self.n_classes > 0:
            out, soft = aug(batch, labels, step=step)
            return _to_torch(out), torch.from_numpy(soft)
        return _to_torch(aug(batch, step=step)), torch.from_numpy(labels)


class Transform:
    """A per-image transform for a Dataset (torchvision style): one image (PIL, numpy [H, W, C] or tensor
    [C, H, W], uint8) -> tensor [C, H, W] (float32 after normalize(...), else uint8). One C call per image:
    Collate is faster and can mix images. Each call in a process is the next step; seed as Collate."""

    def __init__(self, policy, seed=None, device="cpu", threads=None, normalize=True):
        self._pp = _PerProcess(policy, seed, 0, device, threads, normalize)
        if self._pp.mixes:
            raise ValueError("frugal.torch.Transform: cutmix/mixup mix several images: use Collate")

    def __call__(self, image):
        aug, step = self._pp.next()
        return _to_torch(aug(as_hwc(image)[None], step=step))[0]
