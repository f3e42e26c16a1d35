"""frugal.Model: the CLI's predict and eval numbers from Python, PyTorch weights with a model file, class
names, pickling, the OpenCL device against the CPU path."""
import json
import math
import pickle
import struct

import pytest

from conftest import needs_numpy, write_png

needs_numpy()
import numpy as np  # noqa: E402

import frugal  # noqa: E402


def cli_softmax(z):
    """`frugal predict`'s probabilities: max in float, exp and sum in double, rounded to float."""
    mx = float(np.max(z))
    e = [math.exp(float(v) - mx) for v in z]
    s = 0.0
    for v in e:
        s += v
    return np.array([v / s for v in e], np.float32)


def test_predict_gives_the_clis_probabilities(cli, checkpoint, fmnist_test, tmp_path):
    images, _, names = fmnist_test
    for i in range(12):
        write_png(tmp_path / f"img_{i:02d}.png", images[i])
    r = json.loads(cli("predict", "--model", checkpoint, "--input", tmp_path, "--top-k", 10, "--json",
                       "--threads", 1).stdout)
    files = [p["path"] for p in r["predictions"]]
    assert len(files) == 12
    m = frugal.Model(checkpoint, threads=1)
    x = frugal.load_images(files, channels=1, size=(28, 28))
    assert np.array_equal(x, images[:12])  # PNG is lossless: the same pixels either way
    logits = m.predict(x)
    assert logits.shape == (12, 10) and logits.dtype == np.float32
    for i, pred in enumerate(r["predictions"]):
        p = cli_softmax(logits[i])
        assert [t["class"] for t in pred["top"]] == sorted(range(10), key=lambda c: -p[c])
        for t in pred["top"]:
            assert np.float32(t["probability"]) == p[t["class"]]
            assert t["name"] == names[t["class"]] == m.class_names[t["class"]]


def test_evaluate_gives_the_clis_numbers(cli, checkpoint, fmnist_test):
    images, labels, names = fmnist_test
    r = json.loads(cli("eval", "--model", checkpoint, "--data", "fmnist:test", "--limit", 64, "--json",
                       "--threads", 1).stdout)
    ev = frugal.Model(checkpoint, threads=1).evaluate(images, labels)
    assert ev["images"] == r["test_images"] == 64
    assert ev["accuracy"] == r["test_accuracy"] and ev["loss"] == r["test_loss"]
    assert ev["confusion_matrix"].tolist() == r["confusion_matrix"]
    assert [None if math.isnan(v) else v for v in ev["per_class_accuracy"]] == r["per_class_accuracy"]
    assert ev["class_names"] == r["class_names"] == names
    # accuracy from the logits, by hand
    assert ev["accuracy"] == np.mean(frugal.Model(checkpoint).predict(images).argmax(1) == labels)


def test_evaluate_skips_unlabelled_images(checkpoint, fmnist_test):
    images, labels, _ = fmnist_test
    m = frugal.Model(checkpoint, threads=1)
    y = labels.copy()
    y[::2] = -1
    ev = m.evaluate(images, y)
    want = m.evaluate(images[1::2], labels[1::2])
    assert ev["images"] == 32 and ev["accuracy"] == want["accuracy"] and ev["loss"] == want["loss"]


def test_checkpoint_metadata(checkpoint, fmnist_test):
    m = frugal.Model(checkpoint)
    assert m.input_shape == (1, 28, 28) and m.n_classes == 10 and m.arch == "t"
    assert m.normalize == ((0.0,), (1.0,))
    assert m.class_names == fmnist_test[2]
    assert "cpu" in m.device or m.device.startswith("cl:")


def test_pickled_model_reloads_and_predicts_the_same(checkpoint, fmnist_test):
    images = fmnist_test[0][:8]
    m = frugal.Model(checkpoint, threads=1)
    m2 = pickle.loads(pickle.dumps(m))
    assert np.array_equal(m.predict(images), m2.predict(images))
    m2.close()
    assert np.array_equal(m.predict(images), m2.predict(images))  # a closed model reopens


def test_opencl_predict_matches_the_cpu_path(checkpoint, fmnist_test):
    cl = [d["spec"] for d in frugal.devices() if d["spec"].startswith("cl:") and d["usable"]]
    if not cl:
        pytest.skip("no usable OpenCL device")
    images = fmnist_test[0][:16]
    a = frugal.Model(checkpoint, device="cpu").predict(images)
    b = frugal.Model(checkpoint, device=cl[0]).predict(images)
    assert np.allclose(a, b, rtol=1e-4, atol=1e-4)


def write_safetensors(path, tensors):
    """A plain safetensors file (F32 tensors), as safetensors.torch.save_file writes it."""
    header, blobs, off = {}, [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    path.write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


MODEL_FILE = """# the PyTorch net below, layer by layer
conv conv1 8 3 1 1
relu
maxpool 2 2
conv conv2 16 3 1 1 nobias
batchnorm bn2
relu
gap
linear fc 5
"""


def test_pytorch_weights_with_a_model_file_give_pytorchs_logits(tmp_path, fmnist_test):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 8, 3, 1, 1), nn.Conv2d(8, 16, 3, 1, 1, bias=False)
            self.bn2, self.fc = nn.BatchNorm2d(16), nn.Linear(16, 5)

        def forward(self, x):
            x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
            x = torch.relu(self.bn2(self.conv2(x)))
            return self.fc(x.mean((2, 3)))

    net = Net().eval()
    with torch.no_grad():  # running statistics that are not the identity
        net.bn2.running_mean.uniform_(-0.5, 0.5)
        net.bn2.running_var.uniform_(0.5, 2)
        net.bn2.weight.uniform_(0.5, 1.5)
        net.bn2.bias.uniform_(-0.2, 0.2)
    sd = {k: v.numpy() for k, v in net.state_dict().items() if v.dtype == torch.float32}
    write_safetensors(tmp_path / "w.safetensors", sd)
    (tmp_path / "net.txt").write_text(MODEL_FILE)
    names = ["a", "b", "c", "d", "e"]
    m = frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "net.txt", input_shape=(1, 28, 28),
                     class_names=names, mean=0.25, std=[0.5])  # transforms.Normalize(0.25, 0.5) in PyTorch
    assert m.n_classes == 5 and m.class_names == names and m.arch == "net.txt"
    assert m.normalize == ((0.25,), (0.5,))
    images = fmnist_test[0][:16]
    with torch.no_grad():
        want = net((torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.25) / 0.5).numpy()
    got = m.predict(images)
    assert np.abs(got - want).max() < 1e-5
    # without class names: "0".."K-1"
    plain = frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "net.txt", input_shape=(1, 28, 28))
    assert plain.class_names == ["0", "1", "2", "3", "4"]
    with pytest.raises(ValueError, match="mean"):
        frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "net.txt", input_shape=(1, 28, 28), mean=0.5)
    with pytest.raises(ValueError, match="channels"):
        frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "net.txt", input_shape=(1, 28, 28), mean=(0, 0),
                     std=(1, 1))
    with pytest.raises(ValueError, match="class names"):
        frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "net.txt", input_shape=(1, 28, 28),
                     class_names=["x"])


def test_a_model_file_error_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.txt").write_text("conv conv1 8 3 1 1\nconvv c2 8 3 1 1\nlinear fc 3\n")
    write_safetensors(tmp_path / "w.safetensors", {"fc.bias": np.zeros(3)})
    with pytest.raises(frugal.Error) as ei:
        frugal.Model(tmp_path / "w.safetensors", arch=tmp_path / "bad.txt", input_shape=(1, 8, 8))
    assert "bad.txt:2" in str(ei.value) and "convv" in str(ei.value)


def test_a_child_that_cannot_reopen_the_model_gets_the_error(checkpoint, tmp_path, fmnist_test):
    """after a fork the model is loaded again from its file: a file gone by then is a FileError in the child,
    not a hang"""
    import multiprocessing as mp
    import shutil

    path = tmp_path / "m.safetensors"
    shutil.copy(checkpoint, path)
    m = frugal.Model(path, device="cpu")
    path.unlink()
    ctx = mp.get_context("fork")
    q = ctx.Queue()

    def child():
        try:
            m.predict(fmnist_test[0][:2])
            q.put("no error")
        except frugal.FileError as e:
            q.put(str(e))

    p = ctx.Process(target=child)
    p.start()
    msg = q.get(timeout=60)
    p.join(30)
    assert str(path) in msg
    assert m.predict(fmnist_test[0][:2]).shape == (2, 10)  # the parent's copy is unaffected


def test_a_closed_model_whose_file_is_gone_raises_on_use(checkpoint, tmp_path, fmnist_test):
    import shutil

    path = tmp_path / "m.safetensors"
    shutil.copy(checkpoint, path)
    m = frugal.Model(path, device="cpu")
    m.close()
    path.unlink()
    with pytest.raises(frugal.FileError, match="m.safetensors"):
        m.predict(fmnist_test[0][:2])
