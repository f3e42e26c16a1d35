"""frugal.Augment: the bytes of `frugal augment`, the CPU path against OpenCL, CutMix/MixUp labels against the
pixels actually pasted/blended, reproducibility by (seed, step, sample), no input copy, the GIL released,
pickling and forked children."""
import multiprocessing as mp
import pickle
import threading
import time

import pytest

from conftest import needs_numpy, write_png

needs_numpy()
import numpy as np  # noqa: E402

import frugal  # noqa: E402
from frugal import _arrays  # noqa: E402

POLICIES = ["randaugment(n=2,m=9)", "rrc(size=24);hflip(p=0.5);rotate(degrees=15)",
            "trivialaugment;cutout(size=8)", "randaugment(n=2,m=9);cutmix(alpha=1)", "perspective(distortion=0.3);mixup(alpha=0.4)"]


def pictures(n, h=32, w=32, c=3, seed=0):
    """smooth colour pictures with noise (colour ops see real histograms)"""
    r = np.random.default_rng(seed)
    base = np.add.outer(np.arange(h) * 5, np.arange(w) * 3)[None, :, :, None] + np.arange(c) * 40
    return ((base + r.integers(0, 60, (n, h, w, c)) + np.arange(n)[:, None, None, None] * 17) % 256).astype(np.uint8)


def cl_device():
    cl = [d["spec"] for d in frugal.devices() if d["spec"].startswith("cl:") and d["usable"]]
    if not cl:
        pytest.skip("no usable OpenCL device (PoCL: pocl-opencl-icd)")
    return cl[0]


@pytest.mark.parametrize("policy", POLICIES)
def test_same_bytes_as_frugal_augment(cli, tmp_path, policy):
    imgs = pictures(3)
    for i, im in enumerate(imgs):
        write_png(tmp_path / f"in_{i}.png", im)
    cli("augment", "--input", tmp_path, "--policy", policy, "--count", 4, "--seed", 5, "--step", 7,
        "--out-dir", tmp_path / "out", "--device", "cpu", "--threads", 1)
    # the CLI puts every input's `count` samples in one batch: image i, sample s is batch row i * count + s
    out = frugal.Augment(policy, seed=5, device="cpu")(np.repeat(imgs, 4, axis=0), step=7)
    for i in range(3):
        for s in range(4):
            assert np.array_equal(out[i * 4 + s], frugal.load_image(tmp_path / "out" / f"in_{i}_{s}.png")), (i, s)


@pytest.mark.parametrize("policy", POLICIES + ["randaugment(n=2,m=9);normalize(mean=(0.4,0.5,0.6),std=0.25)"])
def test_cpu_and_opencl_give_the_same_bytes(policy):
    dev = cl_device()
    x, y = pictures(8, seed=2), np.arange(8) % 5
    a = frugal.Augment(policy, seed=3, device="cpu", n_classes=5)
    b = frugal.Augment(policy, seed=3, device=dev, n_classes=5)
    assert b.device.startswith(dev)
    for step in (0, 11):
        (oa, sa), (ob, sb) = a(x, y, step=step), b(x, y, step=step)
        assert oa.dtype == ob.dtype and np.array_equal(oa, ob)
        assert np.array_equal(sa, sb)


def constant_batch(n, h=24, w=20):
    """image i filled with a value of its own, so a pixel tells which image it came from"""
    return np.repeat((np.arange(n, dtype=np.uint8) * 29 + 7)[:, None, None, None], h * w * 3).reshape(n, h, w, 3)


def test_cutmix_label_weights_are_the_pasted_area():
    n = 8
    x = constant_batch(n)
    vals = x[:, 0, 0, 0].astype(int)
    aug = frugal.Augment("cutmix(alpha=1)", seed=9, n_classes=n)
    partial = 0
    for step in range(6):
        out, soft = aug(x, np.arange(n), step=step)
        assert soft.shape == (n, n) and np.allclose(soft.sum(1), 1, atol=1e-6)
        for i in range(n):
            px = out[i, :, :, 0].astype(int)
            own = np.mean(px == vals[i])
            assert soft[i, i] == pytest.approx(own, abs=1e-6)
            others = [j for j in range(n) if j != i and soft[i, j] > 0]
            assert len(others) <= 1
            if others:
                j = others[0]
                assert soft[i, j] == pytest.approx(np.mean(px == vals[j]), abs=1e-6)
                assert np.all((px == vals[i]) | (px == vals[j]))  # a box of j pasted into i, nothing else
                partial += 0 < own < 1
            else:
                assert own == 1
    assert partial >= n  # the loop really saw boxes


def test_mixup_label_weights_are_the_blend():
    n = 6
    x = constant_batch(n)
    vals = x[:, 0, 0, 0].astype(float)
    out, soft = frugal.Augment("mixup(alpha=1)", seed=2, n_classes=n)(x, np.arange(n), step=1)
    for i in range(n):
        want = soft[i] @ vals  # the label weights blend the pixel values
        assert np.abs(out[i].astype(float) - want).max() <= 1.0, (i, soft[i])
    assert (soft.max(1) < 1).any()


def test_reproducible_by_seed_and_step():
    x = pictures(6, seed=4)
    a = frugal.Augment("randaugment(n=2,m=9);cutmix(alpha=1)", seed=1, n_classes=3)
    y = np.arange(6) % 3
    first, second = a(x, y), a(x, y)  # steps 0 and 1
    assert a.step == 2
    b = frugal.Augment("randaugment(n=2,m=9);cutmix(alpha=1)", seed=1, n_classes=3, threads=1)
    for step, want in ((0, first), (1, second)):
        got = b(x, y, step=step)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert b.step == 0  # an explicit step does not move the counter
    assert not np.array_equal(first[0], second[0])
    c = frugal.Augment("randaugment(n=2,m=9);cutmix(alpha=1)", seed=2, n_classes=3)
    assert not np.array_equal(c(x, y, step=0)[0], first[0])
    assert np.array_equal(x, pictures(6, seed=4))  # the input is left alone


def test_sample_numbers_and_smaller_batches():
    x = pictures(8, seed=5)
    a = frugal.Augment("randaugment(n=2,m=9);rotate(degrees=30)", seed=4)
    full = a(x, step=3)
    # samples 2..4 of step 3, from an augmenter made for 8 and from a fresh one made for 3
    assert np.array_equal(a(x[2:5], step=3, first_sample=2), full[2:5])
    assert np.array_equal(frugal.Augment(a.policy, seed=4)(x[2:5], step=3, first_sample=2), full[2:5])
    # and a larger batch after that (the augmenter grows)
    assert np.array_equal(a(np.concatenate([x, x]), step=3)[:8], full)


def test_normalize_gives_float_nchw():
    x = pictures(4, seed=6)
    pol = "hflip(p=0.5);normalize(mean=(0.4,0.5,0.6),std=(0.2,0.25,0.3))"
    f = frugal.Augment(pol, seed=1)(x, step=2)
    u = frugal.Augment(pol, seed=1, normalize=False)(x, step=2)
    assert f.dtype == np.float32 and f.shape == (4, 3, 32, 32)
    assert u.dtype == np.uint8 and u.shape == (4, 32, 32, 3)
    want = (u.transpose(0, 3, 1, 2) / 255 - np.array([0.4, 0.5, 0.6])[:, None, None]) / \
        np.array([0.2, 0.25, 0.3])[:, None, None]
    assert np.abs(f - want).max() < 1e-5
    assert frugal.Augment(pol).output_shape((4, 32, 32, 3)) == ((4, 3, 32, 32), np.float32)


def test_one_and_four_channels_and_out_buffer():
    for c in (1, 4):
        x = pictures(3, c=c, seed=c)
        a = frugal.Augment("rrc(size=16);randaugment(n=2,m=9)", seed=2)
        out = np.empty((3, 16, 16, c), np.uint8)
        r = a(x, step=1, out=out)
        assert r is out and np.array_equal(out, a(x, step=1))
    with pytest.raises(ValueError, match="out must be"):
        a(x, out=np.empty((3, 16, 16, 3), np.uint8))


def test_contiguous_input_is_not_copied_and_strided_input_works():
    x = pictures(4, seed=7)
    assert _arrays.images_u8(x, "t") is x
    flipped = x[:, :, ::-1]  # a view with a negative stride
    assert not flipped.flags.c_contiguous
    a = frugal.Augment("randaugment(n=2,m=9)", seed=3)
    assert np.array_equal(a(flipped, step=0), a(np.ascontiguousarray(flipped), step=0))


def test_the_gil_is_released_during_the_call():
    # thread A enters a long C call; thread B can only record its start before A's call ends if A does not
    # hold the GIL while it is in C
    x = pictures(64, 160, 160, seed=8)
    a, b = frugal.Augment("randaugment(n=3,m=9)", threads=1), frugal.Augment("hflip(p=1)", threads=1)
    a(x[:1]), b(x[:1])
    entering, times = threading.Event(), {}

    def run_a():
        entering.set()
        a(x)
        times["a_end"] = time.perf_counter()

    def run_b():
        entering.wait()
        time.sleep(0.001)
        times["b_start"] = time.perf_counter()
        b(x[:1])

    ta, tb = threading.Thread(target=run_a), threading.Thread(target=run_b)
    tb.start()
    ta.start()
    ta.join()
    tb.join()
    assert times["b_start"] < times["a_end"]


def test_pickled_augment_continues_where_it_was():
    x = pictures(4, seed=9)
    a = frugal.Augment("randaugment(n=2,m=9)", seed=6)
    a(x)
    b = pickle.loads(pickle.dumps(a))
    assert b.step == 1 and b.policy == a.policy and b.seed == 6
    assert np.array_equal(a(x), b(x))


def _child(q, aug, x):
    q.put(aug(x, step=4))


def test_a_forked_child_uses_the_parents_augment():
    x = pictures(8, seed=10)
    aug = frugal.Augment("randaugment(n=2,m=9)", seed=8)  # default thread pool, started in the parent
    want = aug(x, step=4)
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q, aug, x))
    p.start()
    got = q.get(timeout=120)
    p.join(60)
    assert p.exitcode == 0 and np.array_equal(got, want)
    assert np.array_equal(aug(x, step=4), want)  # the parent's handles still work


def test_many_image_sizes_in_turn():
    a = frugal.Augment("randaugment(n=2,m=9)", seed=11)
    for size in (8, 9, 10, 11, 12, 8):  # more sizes than augmenters kept: the oldest are remade
        x = pictures(3, size, size + 1, seed=size)
        assert np.array_equal(a(x, step=size), frugal.Augment(a.policy, seed=11)(x, step=size))
    assert len(a._aug) <= 4
