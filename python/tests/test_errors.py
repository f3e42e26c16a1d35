"""Failures: frugal's one-line messages as Python exceptions; bad dtypes and shapes refused in Python before
any C call (checked with a spy on the library object)."""
import pytest

from conftest import needs_numpy

needs_numpy()
import numpy as np  # noqa: E402

import frugal  # noqa: E402
from frugal import _lib  # noqa: E402


def one_line(e):
    s = str(e)
    assert s and "\n" not in s
    return s


def test_missing_checkpoint_is_a_file_error_naming_the_file(tmp_path):
    p = tmp_path / "nope.safetensors"
    with pytest.raises(frugal.FileError) as ei:
        frugal.Model(p)
    assert str(p) in one_line(ei.value) and isinstance(ei.value, OSError)
    assert ei.value.status == 4


def test_malformed_checkpoint_is_a_format_error(tmp_path):
    p = tmp_path / "bad.safetensors"
    p.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}      ")
    with pytest.raises(frugal.FormatError) as ei:
        frugal.Model(p)
    assert str(p) in one_line(ei.value)


def test_bad_policy_lists_the_valid_ops():
    with pytest.raises(frugal.InvalidArgument) as ei:
        frugal.Augment("randaugmnt(n=2)")
    msg = one_line(ei.value)
    assert "randaugmnt" in msg and "randaugment" in msg and isinstance(ei.value, ValueError)


def test_unknown_device_is_an_error():
    with pytest.raises(frugal.Error) as ei:
        frugal.Augment("hflip(p=1)", device="cl:9:9")
    assert "cl:9:9" in one_line(ei.value)
    with pytest.raises(TypeError):
        frugal.Augment("hflip(p=1)", device=None)


def test_unknown_dataset_and_bench_suite():
    with pytest.raises(frugal.Error) as ei:
        frugal.load_dataset("folder:/no/such/dir")
    assert "/no/such/dir" in one_line(ei.value)
    with pytest.raises(frugal.InvalidArgument) as ei:
        frugal.bench("nosuch", "cpu")
    assert "nosuch" in one_line(ei.value)


class Spy:
    """Stands in for the ctypes library and records every symbol looked up."""

    def __init__(self, real):
        self.real, self.calls = real, []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(self.real, name)


@pytest.fixture
def spy(monkeypatch):
    s = Spy(_lib.lib)
    monkeypatch.setattr(_lib, "lib", s)
    return s


GOOD = np.zeros((2, 8, 8, 3), np.uint8)
BAD_IMAGES = [
    (GOOD.astype(np.float32), TypeError),
    (GOOD.astype(np.int16), TypeError),
    (GOOD.astype(bool), TypeError),
    (GOOD[0], ValueError),                              # one image without the batch axis
    (np.zeros((2, 8, 8), np.uint8), ValueError),
    (np.zeros((2, 8, 8, 5), np.uint8), ValueError),     # 5 channels
    (np.zeros((0, 8, 8, 3), np.uint8), ValueError),     # empty batch
    (np.zeros((2, 0, 8, 3), np.uint8), ValueError),
    ([[1, 2], [3, 4]], TypeError),                      # a list of ints is int64
]


@pytest.mark.parametrize("images,exc", BAD_IMAGES)
def test_augment_refuses_bad_images_before_any_c_call(spy, images, exc):
    aug = frugal.Augment.__new__(frugal.Augment)  # no C objects either: the checks must not need them
    aug._config = dict(policy="hflip(p=1)", seed=0, device="cpu", threads=None, n_classes=3, normalize=True)
    aug.step = 0
    with pytest.raises(exc):
        aug(images)
    assert spy.calls == []


@pytest.mark.parametrize("labels,exc,kw", [
    (np.array([0.0, 1.0]), TypeError, {}),
    (np.array([True, False]), TypeError, {}),
    (np.array([0, 1, 2]), ValueError, {}),     # 3 labels for 2 images
    (np.array([[0, 1]]), ValueError, {}),
    (np.array([0, 3]), ValueError, {}),        # class 3 of 3
    (np.array([-1, 0]), ValueError, {}),
    (np.array([0, 1]), ValueError, {"step": -1}),
    (np.array([0, 1]), ValueError, {"step": 1 << 32}),
    (np.array([0, 1]), ValueError, {"step": True}),
    (np.array([0, 1]), ValueError, {"first_sample": (1 << 32) - 1}),
])
def test_augment_refuses_bad_labels_and_steps_before_any_c_call(spy, labels, exc, kw):
    aug = frugal.Augment.__new__(frugal.Augment)
    aug._config = dict(policy="hflip(p=1)", seed=0, device="cpu", threads=None, n_classes=3, normalize=True)
    aug.step = 0
    with pytest.raises(exc):
        aug(GOOD, labels, **kw)
    assert spy.calls == []


def test_labels_without_a_class_count_are_refused(spy):
    aug = frugal.Augment.__new__(frugal.Augment)
    aug._config = dict(policy="hflip(p=1)", seed=0, device="cpu", threads=None, n_classes=0, normalize=True)
    aug.step = 0
    with pytest.raises(ValueError, match="n_classes"):
        aug(GOOD, [0, 1])
    assert spy.calls == []


@pytest.mark.parametrize("kw,exc", [({"seed": -1}, ValueError), ({"seed": 1.5}, ValueError),
                                    ({"n_classes": -2}, ValueError), ({"threads": 0}, ValueError),
                                    ({"policy": 3}, TypeError)])
def test_augment_refuses_bad_settings_before_any_c_call(spy, kw, exc):
    args = dict(policy="hflip(p=1)") | kw
    with pytest.raises(exc):
        frugal.Augment(**args)
    assert spy.calls == []


def test_model_refuses_bad_arguments_before_any_c_call(spy):
    with pytest.raises(ValueError, match="input_shape"):
        frugal.Model("w.safetensors", arch="t")
    with pytest.raises(ValueError, match="channels"):
        frugal.Model("w.safetensors", arch="t", input_shape=(5, 28, 28))
    with pytest.raises(ValueError, match="input_shape"):
        frugal.Model("ckpt.safetensors", input_shape=(1, 28, 28))
    with pytest.raises(TypeError):
        frugal.Model(42)
    assert spy.calls == []


def test_model_predict_and_evaluate_refuse_bad_input_before_any_c_call(monkeypatch, tmp_path):
    m = frugal.Model.__new__(frugal.Model)
    m._c, m._h, m._w, m._k = 1, 28, 28, 10
    s = Spy(_lib.lib)
    monkeypatch.setattr(_lib, "lib", s)
    x = np.zeros((4, 28, 28, 1), np.uint8)
    for bad in (x.astype(np.float32), np.zeros((4, 28, 28, 3), np.uint8), np.zeros((4, 32, 32, 1), np.uint8),
                x[:, :, :, 0], x[0]):
        with pytest.raises((TypeError, ValueError)):
            m.predict(bad)
    for labels in ([0, 1, 2], [0, 1, 2, 10], np.zeros(4, np.float32), [0, 1, 2, -2]):
        with pytest.raises((TypeError, ValueError)):
            m.evaluate(x, labels)
    assert s.calls == []


def test_data_loaders_refuse_bad_arguments_before_any_c_call(spy):
    for call in (lambda: frugal.load_image("x.png", channels=5), lambda: frugal.load_image("x.png", size=(0, 3)),
                 lambda: frugal.load_image(3), lambda: frugal.load_images("x.png"), lambda: frugal.load_images([]),
                 lambda: frugal.load_dataset(""), lambda: frugal.bench("quick", "cpu", repeat=-1),
                 lambda: frugal.set_threads(-1)):
        with pytest.raises((TypeError, ValueError)):
            call()
    assert spy.calls == []
