#!/usr/bin/python3
"""frugal augmentation through Python against torchvision, side by side in one process, one thread:
RandAugment(2,9) on 224x224x3 uint8 images, per image; and the Python overhead of one frugal call on a
batch of 64 (the time in the Python wrapper around the C call, over the time in the C call). The CLI's
`frugal augment --bench` (the same C call without Python) is timed alongside when it is built.

usage: /usr/bin/python3 python/bench_augment.py [--seconds 2] [--repeats 5] [--size 224] [--batch 64]
                                                [--policy 'randaugment(n=2,m=9)'] [--json FILE]
Needs numpy, torch, torchvision and Pillow (Debian: python3-torchvision python3-pil). Figures are images per
CPU-second of this process (fair on a shared, loaded machine); each repeat times every row once, side by
side, and the table shows the medians over the repeats with the spread (min-max) of each ratio.
Targets: frugal >= 3x torchvision on PIL images and >= 10x torchvision on uint8 tensors; overhead < 5%."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frugal  # noqa: E402
from frugal import _lib  # noqa: E402

p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
p.add_argument("--seconds", type=float, default=2.0, help="time per row and repeat")
p.add_argument("--repeats", type=int, default=5)
p.add_argument("--size", type=int, default=224)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--policy", default="randaugment(n=2,m=9)")
p.add_argument("--json", help="also write the results as JSON to this file")
args = p.parse_args()
S, B = args.size, args.batch


def picture(seed):
    """a smooth picture with noise, so colour ops (equalize, autocontrast) see real histograms"""
    r = np.random.default_rng(seed)
    return (np.add.outer(np.arange(S) // 3, np.arange(S) // 2)[:, :, None] + r.integers(0, 16, (S, S, 3))).astype(
        np.uint8)


batch = np.stack([picture(i) for i in range(B)])  # B distinct images: the same working set for every row


def rate(fn, n_per_call):
    """images per CPU-second of fn() over about args.seconds"""
    fn()
    n, c0, w0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - w0 < args.seconds:
        fn()
        n += n_per_call
    return n / (time.process_time() - c0)


# --- frugal through Python: one call per batch, one thread ---
aug = frugal.Augment(args.policy, seed=1, device="cpu", threads=1)
out = np.empty(aug.output_shape(batch.shape)[0], aug.output_shape(batch.shape)[1])


def frugal_batch():
    aug(batch, out=out)


# the Python overhead: time in Augment.__call__ outside the C call, measured within each call
inside = []
real_call = _lib.call


def timed_call(name, *a):
    if name != "fr_augmenter_run":
        return real_call(name, *a)
    t0 = time.perf_counter()
    try:
        return real_call(name, *a)
    finally:
        inside.append(time.perf_counter() - t0)


def overhead(calls=30):
    """median over calls of (wrapper time - C call time) / C call time, and the median overhead in us"""
    ratios, us = [], []
    _lib.call = timed_call
    try:
        for _ in range(calls):
            inside.clear()
            t0 = time.perf_counter()
            aug(batch, out=out)
            total = time.perf_counter() - t0
            ratios.append((total - inside[0]) / inside[0])
            us.append((total - inside[0]) * 1e6)
    finally:
        _lib.call = real_call
    return statistics.median(ratios), statistics.median(us), statistics.median(inside) if inside else 0


rows = [("frugal via Python (batch %d)" % B, lambda: rate(frugal_batch, B))]
cli = Path(os.environ.get("FRUGAL_EXE") or Path(frugal.library_path).parent / "tools" / "frugal")
if os.access(cli, os.X_OK):  # the same C call without Python (its own random pictures, batch 64)
    def cli_rate():
        r = subprocess.run([str(cli), "augment", "--bench", str(S), "--policy", args.policy, "--threads", "1",
                            "--device", "cpu", "--bench-seconds", str(args.seconds)], capture_output=True, text=True,
                           check=True)
        return json.loads(r.stdout.strip().splitlines()[-1])["images_per_cpu_s"]

    rows.append(("frugal C only (frugal augment)", cli_rate))
try:
    import torch
    import torchvision
    import torchvision.transforms as T
    from PIL import Image

    torch.set_num_threads(1)
    n_ops, mag = 2, 9
    if args.policy.startswith("randaugment("):
        kv = dict(x.split("=") for x in args.policy[len("randaugment("):-1].split(",") if "=" in x)
        n_ops, mag = int(kv.get("n", 2)), int(kv.get("m", 9))
    ra = T.RandAugment(num_ops=n_ops, magnitude=mag)
    pils = [Image.fromarray(im) for im in batch]
    tensors = [torch.from_numpy(im).permute(2, 0, 1).contiguous() for im in batch]

    def each(xs):
        def run():
            for x in xs:
                ra(x)
        return run

    rows.append(("torchvision on PIL images", lambda: rate(each(pils), B)))
    rows.append(("torchvision on uint8 tensors", lambda: rate(each(tensors), B)))
    versions = f"torch {torch.__version__}, torchvision {torchvision.__version__}"
except ImportError as e:
    print("torchvision/Pillow not available, frugal only:", e)
    versions = "no torchvision"

res = {name: [] for name, _ in rows}
over = []
for rep in range(args.repeats):
    for name, fn in rows:
        res[name].append(fn())
    over.append(overhead())

med = {k: statistics.median(v) for k, v in res.items()}
load = os.getloadavg()
print(f"policy {args.policy}, {S}x{S}x3 uint8, one thread, {args.repeats} repeat(s) of {args.seconds:g} s per row; "
      f"frugal {frugal.__version__} ({frugal.library_path}), {versions}; load average {load[0]:.2f} on "
      f"{os.cpu_count()} cores")
print(f"{'':32} {'img/cpu-s':>10} {'frugal is':>10} {'spread':>13}")
f = res[rows[0][0]]
summary = {"policy": args.policy, "size": S, "batch": B, "repeats": args.repeats, "images_per_cpu_s": med}
for name, _ in rows:
    if name == rows[0][0]:
        print(f"{name:32} {med[name]:10.0f}")
        continue
    ratios = [a / b for a, b in zip(f, res[name])]
    summary["ratio " + name] = statistics.median(ratios)
    print(f"{name:32} {med[name]:10.0f} {statistics.median(ratios):9.2f}x {min(ratios):6.2f}-{max(ratios):<6.2f}")
ov = statistics.median(o[0] for o in over)
print(f"Python overhead per call of {B} images: {statistics.median(o[1] for o in over):.0f} us = {100 * ov:.2f}% of "
      f"the C call ({1e3 * statistics.median(o[2] for o in over):.1f} ms); spread "
      f"{100 * min(o[0] for o in over):.2f}-{100 * max(o[0] for o in over):.2f}%")
summary["python_overhead"] = ov
targets = [("vs PIL >= 3x", summary.get("ratio torchvision on PIL images", float("nan")) >= 3),
           ("vs tensors >= 10x", summary.get("ratio torchvision on uint8 tensors", float("nan")) >= 10),
           ("overhead < 5%", ov < 0.05)]
print("targets: " + ", ".join(f"{t} {'met' if ok else 'MISSED'}" for t, ok in targets))
if args.json:
    Path(args.json).write_text(json.dumps(summary, indent=1))
