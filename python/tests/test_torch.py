"""frugal.torch: the collate function in DataLoader worker processes gives what frugal.Augment gives in the main
process for the same (seed, step); the per-image transform; the PyTorch example runs."""
import runpy
from pathlib import Path

import pytest

from conftest import needs_numpy

needs_numpy()
import numpy as np  # noqa: E402

import frugal  # noqa: E402

torch = pytest.importorskip("torch")
from frugal.torch import Collate, Transform, as_hwc  # noqa: E402

POLICY = "randaugment(n=2,m=9);cutmix(alpha=1)"


def dataset(n=40, h=20, w=20):
    r = np.random.default_rng(0)
    images = r.integers(0, 256, (n, h, w, 3), dtype=np.uint8)
    return images, (np.arange(n) % 4).astype(np.int64)


@pytest.mark.parametrize("workers", [0, 2])
def test_collate_in_workers_equals_augment_by_batch_index(workers):
    images, labels = dataset()
    frugal.Augment(POLICY, seed=7, n_classes=4)(images[:8], labels[:8])  # the parent has used frugal before the fork
    collate = Collate(POLICY, n_classes=4, seed=7)
    loader = torch.utils.data.DataLoader(list(zip(images, labels)), batch_size=8, num_workers=workers,
                                         collate_fn=collate)
    ref = frugal.Augment(POLICY, seed=7, n_classes=4)
    for b, (x, t) in enumerate(loader):
        want, soft = ref(images[8 * b:8 * b + 8], labels[8 * b:8 * b + 8], step=b)
        assert x.dtype == torch.uint8 and x.shape == (8, 3, 20, 20)  # NCHW view of frugal's NHWC bytes
        assert np.array_equal(x.permute(0, 2, 3, 1).numpy(), want)
        assert t.dtype == torch.float32 and np.array_equal(t.numpy(), soft)
    assert b == 4


def batches(collate, n=16, context=None):
    """the image batches of a 2-worker DataLoader over n samples"""
    images, labels = dataset(n)
    loader = torch.utils.data.DataLoader(list(zip(images, labels)), batch_size=8, num_workers=2, collate_fn=collate,
                                         multiprocessing_context=context)
    return [x for x, _ in loader]


def test_spawned_workers_give_the_same_batches_as_forked_ones():
    # spawn pickles the collate function (its settings, not C handles) into fresh interpreters
    want = batches(Collate(POLICY, n_classes=4, seed=5))
    got = batches(Collate(POLICY, n_classes=4, seed=5), context="spawn")
    assert all(torch.equal(a, b) for a, b in zip(want, got))


def test_collate_set_epoch_changes_the_augmentations_reproducibly():
    def epoch(e):
        c = Collate(POLICY, n_classes=4, seed=3)
        c.set_epoch(e)
        return batches(c)

    e0, e1, e0b = epoch(0), epoch(1), epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(e0, e0b))
    assert not torch.equal(e0[0], e1[0])


def test_collate_without_a_seed_follows_torch_manual_seed():
    def run(seed):
        torch.manual_seed(seed)
        return batches(Collate("randaugment(n=2,m=9)"))

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_collate_with_normalize_gives_float_batches_and_int_labels_without_classes():
    images, labels = dataset(8)
    c = Collate("hflip(p=1);normalize(mean=0.5,std=0.5)", seed=1)
    x, y = c([(torch.from_numpy(im).permute(2, 0, 1), int(l)) for im, l in zip(images, labels)])  # CHW tensors
    assert x.dtype == torch.float32 and x.shape == (8, 3, 20, 20)
    want = (images[:, :, ::-1].transpose(0, 3, 1, 2) / 255 - 0.5) / 0.5
    assert np.abs(x.numpy() - want).max() < 1e-5
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()


def test_collate_refuses_mixing_without_classes_and_mixed_sizes():
    with pytest.raises(ValueError, match="n_classes"):
        Collate(POLICY)
    c = Collate("hflip(p=1)", seed=0)
    with pytest.raises(ValueError, match="differ in size"):
        c([np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8)])


def test_transform_on_pil_numpy_and_tensor_images():
    Image = pytest.importorskip("PIL.Image")
    im = dataset(1)[0][0]
    t = Transform("hflip(p=1)", seed=0)
    for x in (Image.fromarray(im), im, torch.from_numpy(im).permute(2, 0, 1)):
        y = t(x)
        assert y.shape == (3, 20, 20) and np.array_equal(y.permute(1, 2, 0).numpy(), im[:, ::-1])
    assert as_hwc(np.zeros((5, 6), np.uint8)).shape == (5, 6, 1)
    with pytest.raises(TypeError):
        t(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="Collate"):
        Transform(POLICY)


def test_the_pytorch_example_runs(monkeypatch, capsys):
    """python/example_torch.py on 256 training and 200 test images (the full run takes minutes)"""
    try:
        frugal.load_dataset("fmnist:test")
    except frugal.Error:
        pytest.skip("Fashion-MNIST is not installed")
    real = frugal.load_dataset

    def small(spec, *a, **k):
        d = real(spec, *a, **k)
        n = 200 if spec.endswith(":test") else 256
        return frugal.Dataset(d.images[:n], d.labels[:n], d.class_names)

    monkeypatch.setattr(frugal, "load_dataset", small)
    src = Path(__file__).resolve().parents[1] / "example_torch.py"
    runpy.run_path(str(src), run_name="__main__")
    out = capsys.readouterr().out
    assert [line.split(":")[0] for line in out.splitlines()] == ["epoch 0", "epoch 1", "epoch 2"]
    assert all("test accuracy" in line for line in out.splitlines())
