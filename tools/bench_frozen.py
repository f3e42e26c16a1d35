#!/usr/bin/python3
"""Fine-tuning a frozen backbone against training the whole graph, side by side: `frugal finetune` on a folder of photos
made from Fashion-MNIST, three ways, alternating, each repeated:

  full     --freeze none (forward and backward through every layer, the whole model updated)
  eval     --freeze backbone --augment hflip (the frozen backbone runs every step, in eval mode, without gradients)
  cached   --freeze backbone (no augmentation: the backbone's features once per image, then the head trains on them)

usage: /usr/bin/python3 tools/bench_frozen.py [--frugal build/tools/frugal] [--model resnet18] [--size 224]
                                              [--images 320] [--epochs 3] [--batch 32] [--repeats 2] [--threads 2]
A torchvision NAME is exported with random weights (tools/export_torchvision.py, needs torch); t/s/m are trained for
one epoch first. Prints the training time of each run (steps, plus the feature pass for `cached`; validation and test
off) and its ratio to `full`. Needs Fashion-MNIST (tools/make_fmnist_folder.py)."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = [("full", ["--freeze", "none", "--backbone-lr-mult", "1"]),
         ("eval", ["--freeze", "backbone", "--augment", "hflip"]),
         ("cached", ["--freeze", "backbone"])]


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"bench_frozen.py: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frugal", default=os.path.join(HERE, "..", "build", "tools", "frugal"))
    ap.add_argument("--model", default="resnet18", help="torchvision name (exported with random weights) or t/s/m")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--images", type=int, default=320, help="training images (a tenth per class)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-frozen-") as tmp:
        photos = os.path.join(tmp, "photos")
        run([sys.executable, os.path.join(HERE, "make_fmnist_folder.py"), photos, "--size", str(a.size),
             "--train-per-class", str(max(1, a.images // 10)), "--test-per-class", "1"])
        data = ["--data", "folder:" + os.path.join(photos, "train"), "--size", str(a.size), "--val", "0",
                "--test", "none", "--threads", str(a.threads)]
        if a.model in ("t", "s", "m"):
            src = os.path.join(tmp, "src")
            run([a.frugal, "train", "--model", a.model, "--epochs", "1", "--batch", str(a.batch), "--out", src] + data)
            source = ["--from", os.path.join(src, "model.safetensors")]
        else:
            run([sys.executable, os.path.join(HERE, "export_torchvision.py"), a.model, "--out", tmp,
                 "--size", str(a.size)])
            source = ["--from", os.path.join(tmp, a.model + ".safetensors"),
                      "--arch", os.path.join(tmp, a.model + ".txt")]
        times = {m: [] for m, _ in MODES}
        for rep in range(a.repeats):
            for mode, flags in MODES:
                out = run([a.frugal, "finetune", "--json", "--epochs", str(a.epochs), "--batch", str(a.batch)] +
                          source + data + flags)
                r = json.loads(out.strip().splitlines()[-1])
                steps_s = r["steps"] * a.batch / r["train_images_per_second"]
                t = steps_s + r.get("feature_seconds", 0)
                times[mode].append(t)
                print(f"  repeat {rep + 1} {mode:6s}: {t:7.1f} s (steps {steps_s:.1f} s, features "
                      f"{r.get('feature_seconds', 0):.1f} s, cached {r.get('features_cached')})", flush=True)
        full = statistics.median(times["full"])
        print(f"\n{a.model} at {a.size}x{a.size}, {a.images} images, {a.epochs} epochs, batch {a.batch}, "
              f"{a.threads} threads (median of {a.repeats}):")
        for mode, _ in MODES:
            t = statistics.median(times[mode])
            print(f"  {mode:6s} {t:8.1f} s   {full / t:5.1f}x faster than full")


if __name__ == "__main__":
    main()
