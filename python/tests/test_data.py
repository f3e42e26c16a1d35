"""frugal.load_image / load_images / load_dataset against independent decoders (gzip + numpy for IDX, Pillow
for PNG)."""
import gzip

import pytest

from conftest import needs_numpy, write_png

needs_numpy()
import numpy as np  # noqa: E402

import frugal  # noqa: E402


def test_fmnist_matches_the_idx_files_read_with_numpy(fmnist_test):
    images, labels, names = fmnist_test
    d = frugal.load_dataset("fmnist:test")
    for base in ("/usr/share/datasets/fashion-mnist",):
        try:
            raw = gzip.open(f"{base}/t10k-images-idx3-ubyte.gz").read()
            lab = gzip.open(f"{base}/t10k-labels-idx1-ubyte.gz").read()
        except OSError:
            pytest.skip("Fashion-MNIST is not under /usr/share/datasets")
    want = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28, 1)
    assert np.array_equal(d.images, want)
    assert np.array_equal(d.labels, np.frombuffer(lab, np.uint8, offset=8).astype(np.int32))
    assert names[0] == "T-shirt/top" and len(names) == 10


def test_load_image_reads_what_pillow_reads(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(1)
    for c, mode in ((1, "L"), (3, "RGB"), (4, "RGBA")):
        a = rng.integers(0, 256, (13, 17, c), dtype=np.uint8)
        write_png(tmp_path / "x.png", a)
        pil = np.asarray(Image.open(tmp_path / "x.png").convert(mode))
        got = frugal.load_image(tmp_path / "x.png", channels=c)
        assert got.shape == (13, 17, c) and np.array_equal(got.reshape(pil.shape), pil)


def test_load_image_converts_and_resizes(tmp_path):
    a = np.full((8, 6, 3), 200, np.uint8)
    write_png(tmp_path / "x.png", a)
    g = frugal.load_image(tmp_path / "x.png", channels=1, size=(4, 3))
    assert g.shape == (4, 3, 1) and (g == 200).all()  # grey of a grey colour, resized flat
    assert frugal.load_image(tmp_path / "x.png", channels=0).shape == (8, 6, 3)
    assert frugal.load_image(tmp_path / "x.png", size=5).shape == (5, 5, 3)


def test_load_images_needs_one_size(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    write_png(tmp_path / "b.png", np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in size"):
        frugal.load_images([tmp_path / "a.png", tmp_path / "b.png"])
    assert frugal.load_images([tmp_path / "a.png", tmp_path / "b.png"], size=(4, 4)).shape == (2, 4, 4, 3)


def test_folder_dataset_has_class_names_and_labels(tmp_path):
    for cls, v in (("cat", 10), ("dog", 20)):
        (tmp_path / cls).mkdir()
        for i in range(3):
            write_png(tmp_path / cls / f"{i}.png", np.full((6, 6, 3), v + i, np.uint8))
    d = frugal.load_dataset(f"folder:{tmp_path}", size=(4, 4))
    assert d.class_names == ["cat", "dog"]
    assert d.images.shape == (6, 4, 4, 3) and d.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert sorted(int(im[0, 0, 0]) for im in d.images) == [10, 11, 12, 20, 21, 22]


def test_unreadable_image_is_a_one_line_error(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(frugal.Error) as ei:
        frugal.load_image(tmp_path / "bad.png")
    assert "bad.png" in str(ei.value) and "\n" not in str(ei.value)
