#!/usr/bin/python3
# Side-by-side training-step and inference images/s and peak resident memory of torchvision backbones on the CPU
# path: frugal's tests/bench_train on tools/models/NAME.txt against PyTorch's torchvision.models.NAME
# (tests/bench_train_torch.py -a NAME): 3x224x224 random inputs, 1000 classes, SGD lr 0.01 momentum 0.9, the same
# batch and thread count, interleaved run by run (each its own process, peak RSS from wait4) so machine load hits
# both alike. Checks with threadpoolctl that PyTorch/numpy use OpenBLAS, not the reference BLAS.
# Targets (issue 14): resnet18 batch 32 2 threads: inference >= 2x, training >= 1.5x, peak RSS <= 0.5x;
# mobilenet_v2 training >= 1.2x.
# Usage: /usr/bin/python3 tools/compare_backbones.py [--bench BUILD/tests/bench_train] [--repeats 3] [--seconds 10]
#        [--threads 2] [--batch 32] [--models resnet18,mobilenet_v2] [--modes train,infer]
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_train import TORCH_SCRIPT, have_torch, loadavg, med_spread, run_measured  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = {("resnet18", "infer", "images_per_s"): 2.0, ("resnet18", "train", "images_per_s"): 1.5,
           ("resnet18", "train", "rss"): 0.5, ("resnet18", "infer", "rss"): 0.5,
           ("mobilenet_v2", "train", "images_per_s"): 1.2}


def per_cpu(kv):
    """images per second of CPU time (all threads)"""
    return float(kv["images_per_s"]) * float(kv["seconds"]) / max(float(kv["cpu_seconds"]), 1e-9)


def blas_report():
    code = ("import numpy, torch, threadpoolctl\n"
            "print('; '.join(f\"{i['user_api']} {i['internal_api']} {i.get('version')} {i['filepath']}\" "
            "for i in threadpoolctl.threadpool_info()))\n"
            "print(torch.__config__.show().replace(chr(10), ' ')[:400])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    return r.stdout.strip() if r.returncode == 0 else f"threadpoolctl failed: {r.stderr.strip()[-300:]}"


def main():
    ap = argparse.ArgumentParser(description="frugal vs PyTorch: torchvision backbones, images/s and peak RSS")
    ap.add_argument("--bench", default="build/tests/bench_train", help="frugal's bench_train binary")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0, help="timed seconds per run (after 3 warm-up steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--modes", default="infer,train")
    a = ap.parse_args()
    bench = os.path.abspath(a.bench)
    if not os.access(bench, os.X_OK):
        sys.exit("compare_backbones: give --bench BUILD/tests/bench_train (build frugal first)")
    if not have_torch():
        sys.exit(f"compare_backbones: PyTorch is not importable from {sys.executable} (Debian: python3-torch, "
                 "python3-torchvision)")
    blas = blas_report()
    print(f"BLAS: {blas}")
    if "openblas" not in blas.lower() and "mkl" not in blas.lower():
        print("WARNING: no OpenBLAS/MKL found by threadpoolctl: PyTorch may be on the reference BLAS (~2.4x slower)")
    print(f"load average at start: {loadavg()}  (cpus: {os.cpu_count()})")
    t, b = a.threads, a.batch
    env = dict(os.environ, FRUGAL_THREADS=str(t), OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t),
               OPENBLAS_NUM_THREADS=str(t))
    res = {}
    for r in range(a.repeats):
        for name in a.models.split(","):
            model_file = os.path.join(HERE, "models", f"{name}.txt")
            for mode in a.modes.split(","):
                order = [("frugal", [bench, "-t", str(t), "-m", mode, "-s", str(a.seconds), "-i", "3,224,224",
                                     "-k", "1000", model_file, str(b)]),
                         ("pytorch", [sys.executable, TORCH_SCRIPT, "-m", mode, "-s", str(a.seconds), "-a", name,
                                      "-t", str(t), str(b)])]
                if r % 2:
                    order.reverse()
                for impl, cmd in order:
                    kv = run_measured(cmd, env)
                    res.setdefault((impl, name, mode), []).append(kv)
                    print(f"  repeat {r + 1}/{a.repeats} {impl:7s} {name:14s} {mode:5s}: "
                          f"{float(kv['images_per_s']):7.2f} img/s (cpu {float(kv['cpu_seconds']):.1f} s of "
                          f"{float(kv['seconds']):.1f} s)  peak RSS {kv['wait4_rss_kb'] / 1024:7.1f} MB  "
                          f"(load {loadavg()})", flush=True)
    print(f"load average at end: {loadavg()}")
    print(f"\nmedian [min..max] over {a.repeats} runs, batch {b}, {t} threads; ratio = frugal / PyTorch; per CPU-second "
          "= images per second of CPU time used (fairer when other work shares the cores)")
    for name in a.models.split(","):
        for mode in a.modes.split(","):
            f, p = res.get(("frugal", name, mode), []), res.get(("pytorch", name, mode), [])
            if not f or not p:
                continue
            fi, fl, fh = med_spread([float(k["images_per_s"]) for k in f])
            pi, pl, ph = med_spread([float(k["images_per_s"]) for k in p])
            fc, _, _ = med_spread([per_cpu(k) for k in f])
            pc, _, _ = med_spread([per_cpu(k) for k in p])
            fr, _, _ = med_spread([k["wait4_rss_kb"] / 1024 for k in f])
            pr, _, _ = med_spread([k["wait4_rss_kb"] / 1024 for k in p])
            ti = TARGETS.get((name, mode, "images_per_s"))
            tr = TARGETS.get((name, mode, "rss"))
            print(f"{name:14s} {mode:5s}: frugal {fi:7.2f} [{fl:.2f}..{fh:.2f}] img/s, PyTorch {pi:7.2f} "
                  f"[{pl:.2f}..{ph:.2f}] -> {fi / pi:5.2f}x" + (f" (target >= {ti}x)" if ti else "") +
                  f"; per CPU-second {fc:.2f} vs {pc:.2f} -> {fc / pc:4.2f}x"
                  f"; peak RSS {fr:6.0f} MB vs {pr:6.0f} MB -> {fr / pr:4.2f}x" +
                  (f" (target <= {tr}x)" if tr else ""))


if __name__ == "__main__":
    main()
