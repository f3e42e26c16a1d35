#!/usr/bin/python3
# Side-by-side training and inference images/s and peak resident memory of model s (1x28x28, 10 classes):
# frugal's tests/bench_train against PyTorch's tests/bench_train_torch.py (same model, init scheme, inputs,
# batch, SGD lr 0.01 momentum 0.9, same thread count), interleaved run by run so machine load hits both
# alike. Each run is its own process, so its peak RSS (os.wait4) is that one configuration's.
# Usage: /usr/bin/python3 tools/compare_train.py [--bench BUILD/tests/bench_train] [--repeats 3] [--seconds 3]
#        [--threads 1,2] [--batches 64,256] [--modes train,infer]
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TORCH_SCRIPT = os.path.join(HERE, "..", "tests", "bench_train_torch.py")


def have_torch():
    try:
        r = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, timeout=120)
        return r.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_measured(cmd, env):
    """fork/exec via wait4 so the child's own ru_maxrss comes back (RUSAGE_CHILDREN would be the maximum
    over every child so far)."""
    rfd, wfd = os.pipe()
    efd_r, efd_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.dup2(wfd, 1)
            os.dup2(efd_w, 2)
            os.close(rfd)
            os.close(efd_r)
            os.execve(cmd[0], cmd, env)
        finally:
            os._exit(127)
    os.close(wfd)
    os.close(efd_w)
    with os.fdopen(rfd) as f_out, os.fdopen(efd_r) as f_err:
        out = f_out.read()
        err = f_err.read()
    _, status, ru = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({rc}): {err.strip()[-500:]}")
    lines = [ln for ln in out.splitlines() if ln.startswith("impl ")]
    if not lines:
        raise RuntimeError(f"{' '.join(cmd)}: no result line in: {out.strip()[-500:]}")
    tok = lines[-1].split()
    kv = dict(zip(tok[0::2], tok[1::2]))
    kv["wait4_rss_kb"] = ru.ru_maxrss
    return kv


def loadavg():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def med_spread(vals):
    if not vals:
        return float("nan"), float("nan"), float("nan")
    return statistics.median(vals), min(vals), max(vals)


def main():
    ap = argparse.ArgumentParser(description="frugal vs PyTorch: model s training/inference images/s and peak RSS")
    ap.add_argument("--bench", default=None, help="frugal's bench_train binary (default: build/tests/bench_train)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run (after 3 warm-up steps)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batches", default="64,256")
    ap.add_argument("--modes", default="train,infer")
    a = ap.parse_args()
    bench = a.bench
    if bench is None:
        for cand in ("build/tests/bench_train", "/tmp/build/tests/bench_train"):
            if os.path.exists(cand):
                bench = cand
                break
    if not bench or not os.access(bench, os.X_OK):
        sys.exit("compare_train: give --bench BUILD/tests/bench_train (build frugal first)")
    bench = os.path.abspath(bench)
    threads = [int(t) for t in a.threads.split(",")]
    batches = [int(b) for b in a.batches.split(",")]
    modes = a.modes.split(",")
    torch_ok = have_torch()
    if not torch_ok:
        print(f"compare_train: PyTorch is not importable from {sys.executable}: frugal's side only "
              "(Debian: apt install python3-torch)")
    print(f"load average at start: {loadavg()}  (cpus: {os.cpu_count()})")

    env = dict(os.environ)
    # PyTorch's own thread count comes from set_num_threads; keep OpenMP/MKL from oversubscribing beyond it
    results = {}  # (impl, mode, threads, batch) -> list of kv
    for r in range(a.repeats):
        for t in threads:
            for b in batches:
                for mode in modes:
                    e = dict(env, FRUGAL_THREADS=str(t), OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
                    order = [("frugal", [bench, "-t", str(t), "-m", mode, "-s", str(a.seconds), "s", str(b)])]
                    if torch_ok:
                        tcmd = [sys.executable, TORCH_SCRIPT, "-m", mode, "-s", str(a.seconds), "-t", str(t), str(b)]
                        order.append(("pytorch", tcmd))
                    if r % 2:  # alternate who goes first
                        order.reverse()
                    for impl, cmd in order:
                        kv = run_measured(cmd, e)
                        results.setdefault((impl, mode, t, b), []).append(kv)
                        print(f"  repeat {r + 1}/{a.repeats} {impl:7s} {mode:5s} threads {t} batch {b:4d}: "
                              f"{float(kv['images_per_s']):9.1f} img/s  peak RSS {kv['wait4_rss_kb'] / 1024:7.1f} MB"
                              f"  (load {loadavg()})", flush=True)
    print(f"load average at end: {loadavg()}")
    print()
    def table(title, metric):
        print(title)
        hdr = (f"{'mode':5s} {'thr':>3s} {'batch':>5s} | {'frugal median [min..max]':>30s} | "
               f"{'pytorch median [min..max]':>30s} | {'ratio med [min..max]':>22s} | "
               f"{'RSS MB frugal':>13s} {'pytorch':>8s} {'ratio':>6s}")
        print(hdr)
        print("-" * len(hdr))
        for mode in modes:
            for t in threads:
                for b in batches:
                    fk = results.get(("frugal", mode, t, b), [])
                    pk = results.get(("pytorch", mode, t, b), [])
                    f = [metric(kv) for kv in fk]
                    p = [metric(kv) for kv in pk]
                    fr = statistics.median([kv["wait4_rss_kb"] / 1024 for kv in fk])
                    fm, fl, fh = med_spread(f)
                    line = f"{mode:5s} {t:3d} {b:5d} | {fm:9.1f} [{fl:8.1f}..{fh:8.1f}] | "
                    if p:
                        pm, pl, ph = med_spread(p)
                        # ratios of the interleaved pairs (same repeat), so load drifts cancel
                        rm, rl, rh = med_spread([x / y for x, y in zip(f, p)])
                        pr = statistics.median([kv["wait4_rss_kb"] / 1024 for kv in pk])
                        line += f"{pm:9.1f} [{pl:8.1f}..{ph:8.1f}] | {rm:5.2f}x [{rl:5.2f}..{rh:5.2f}] | "
                        line += f"{fr:13.1f} {pr:8.1f} {fr / pr:6.2f}"
                    else:
                        line += f"{'(no torch)':>30s} | {'':>22s} | {fr:13.1f}"
                    print(line)
        print()

    table("images/s (wall clock):", lambda kv: float(kv["images_per_s"]))
    table("images per CPU-second of the process (less sensitive to other load on the machine; with 2 threads "
          "it counts spin-waiting too):",
          lambda kv: float(kv["images_per_s"]) * float(kv["seconds"]) / max(float(kv["cpu_seconds"]), 1e-9))
    print("ratio = frugal / PyTorch per interleaved pair (target >= 2.0); RSS = peak resident memory of that run's "
          "process (wait4), ratio target <= 0.5 for training")


if __name__ == "__main__":
    main()
