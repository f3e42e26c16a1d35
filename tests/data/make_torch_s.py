#!/usr/bin/env python3
"""Writes tests/data/torch_s.safetensors: the reference CNN "s" (docs/reference.md §8) trained in PyTorch for 50
SGD steps on the first 512 Fashion-MNIST training images, saved under its state_dict names, plus `test.inputs`
(the first 16 t10k images /255, [16,1,28,28]) and `test.logits` (PyTorch's eval-mode logits on them, [16,10]).
test_model checks that frugal loads it by name and predicts the same logits.
    /usr/bin/python3 tests/data/make_torch_s.py"""
import gzip
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from st_write import write_safetensors

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx_images(name, n):
    with gzip.open(os.path.join(FMNIST, name), "rb") as f:
        raw = f.read(16 + n * 784)
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, 1, 28, 28).astype(np.float32) / 255.0


def idx_labels(name, n):
    with gzip.open(os.path.join(FMNIST, name), "rb") as f:
        raw = f.read(8 + n)
    return np.frombuffer(raw[8:], dtype=np.uint8).astype(np.int64)


class S(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(3136, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(F.relu(self.fc1(torch.flatten(x, 1))), 0.5, self.training)
        return self.fc2(x)


def f32(t):
    return ("F32", list(t.shape), t.detach().contiguous().numpy().astype("<f4").tobytes())


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    x = torch.from_numpy(idx_images("train-images-idx3-ubyte.gz", 512))
    y = torch.from_numpy(idx_labels("train-labels-idx1-ubyte.gz", 512))
    model = S()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for step in range(50):
        i = (step * 64) % 512
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt = torch.from_numpy(idx_images("t10k-images-idx3-ubyte.gz", 16))
    with torch.no_grad():
        logits = model(xt)
    tensors = {k: f32(v) for k, v in model.state_dict().items()}
    tensors["test.inputs"] = f32(xt)
    tensors["test.logits"] = f32(logits)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_s.safetensors")
    write_safetensors(out, tensors)
    acc = (logits.argmax(1).numpy() == idx_labels("t10k-labels-idx1-ubyte.gz", 16)).mean()
    print(out, "final train loss %.4f, test.inputs accuracy %.3f" % (loss.item(), acc))


if __name__ == "__main__":
    main()
