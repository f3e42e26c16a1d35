#!/usr/bin/python3
"""compare_cpu.py: frugal's pure-C SGEMM against numpy's BLAS (OpenBLAS) side by side, on 1 and 2 threads.

Runs tools/bench_gemm (built by meson) and a numpy subprocess on the same shapes, one after the other,
and prints the median GFLOP/s of several runs with the spread (min-max) and the ratio frugal/numpy.
The numpy side runs with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment (only in
that subprocess), so OpenBLAS picks its own kernel for this CPU; the kernel it used is reported.

Needs /usr/bin/python3 with Debian's numpy (apt-get install -y python3-numpy; python3-threadpoolctl to
report the BLAS kernel; libopenblas0-pthread so that numpy uses OpenBLAS and not the reference BLAS).
Without numpy only frugal's figures are printed.

  /usr/bin/python3 tools/compare_cpu.py --bench build/tools/bench_gemm [--threads 1,2] [--runs 7] [--quick]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

SQUARE = [256, 512, 1024, 2048]
# Model `s` GEMMs (reference CNN, batch 64 and 256): linear layers as M x N x K with transposes, and the
# convolutions as im2col GEMMs (out channels x (pixels * batch) x (in channels * 9)).
MODEL_S = [
    ("fc1 fwd b64", "64x128x3136:nt"),
    ("fc1 fwd b256", "256x128x3136:nt"),
    ("fc1 dX b64", "64x3136x128:nn"),
    ("fc1 dW b64", "128x3136x64:tn"),
    ("fc2 fwd b256", "256x10x128:nt"),
    ("fc2 dX b256", "256x128x10:nn"),
    ("fc2 dW b256", "10x128x256:tn"),
    ("conv1 b64", "32x50176x9:nn"),
    ("conv2 b64", "64x12544x288:nn"),
    ("conv2 dW b64", "64x288x12544:nt"),
    ("conv2 dX b64", "288x12544x64:tn"),
    # per image, as src/cpu/conv.c calls it when samples are spread over threads
    ("conv1 fwd/img", "32x784x9:nn"),
    ("conv1 dW/img", "32x9x784:nt"),
    ("conv2 fwd/img", "64x196x288:nn"),
    ("conv2 dX/img", "288x196x64:tn"),
    ("conv2 dW/img", "64x288x196:nt"),
]

NUMPY_SIDE = r"""
import json, sys, time
import numpy as np
info = {"numpy": np.__version__}
try:
    from threadpoolctl import threadpool_info
    blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
    if blas:
        info["blas"] = "%s %s kernel=%s threads=%s" % (blas[0].get("internal_api"), blas[0].get("version"),
                                                     blas[0].get("architecture"), blas[0].get("num_threads"))
except Exception as e:  # threadpoolctl absent or failing: say so
    info["blas"] = "unknown (threadpoolctl unavailable: %s)" % e.__class__.__name__
print(json.dumps({"info": info}), flush=True)
runs = int(sys.argv[1])
cpu_clock = sys.argv[2] == "cpu"
threads = int(sys.argv[3])
clock = (lambda: time.process_time() / threads) if cpu_clock else time.perf_counter
rng = np.random.default_rng(1)
for spec in sys.argv[4:]:
    dims, tt = spec.split(":")
    m, n, k = (int(x) for x in dims.split("x"))
    a = rng.random((k, m) if tt[0] == "t" else (m, k), dtype=np.float32) - 0.5
    b = rng.random((n, k) if tt[1] == "t" else (k, n), dtype=np.float32) - 0.5
    a = a.T if tt[0] == "t" else a
    b = b.T if tt[1] == "t" else b
    c = np.empty((m, n), dtype=np.float32)
    np.matmul(a, b, out=c)
    t0 = clock(); np.matmul(a, b, out=c); once = clock() - t0
    reps = 1 if once > 0.02 else int(0.02 / max(once, 1e-7)) + 1
    g = []
    for r in range(runs):
        t0 = clock()
        for i in range(reps):
            np.matmul(a, b, out=c)
        g.append(2.0 * m * n * k * reps / max(clock() - t0, 1e-9) / 1e9)
    g.sort()
    print(json.dumps({"shape": spec, "median": g[len(g) // 2], "min": g[0], "max": g[-1]}), flush=True)
"""


def find_bench(explicit):
    if explicit:
        return explicit
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    for cand in [os.environ.get("FRUGAL_BENCH_GEMM", ""), os.path.join(root, "build", "tools", "bench_gemm"),
                 os.path.join(root, "builddir", "tools", "bench_gemm"), "/tmp/build-gemm/tools/bench_gemm"]:
        if cand and os.access(cand, os.X_OK):
            return cand
    return shutil.which("bench_gemm")


def run_frugal(bench, threads, runs, specs, kernel, clock):
    env = dict(os.environ, FRUGAL_THREADS=str(threads))
    cmd = [bench, "-t", str(threads), "-r", str(runs), "-c", "1" if clock == "cpu" else "0"]
    cmd += (["-k", kernel] if kernel else []) + specs
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    res, name = {}, "?"
    for line in out.splitlines():
        kv = dict(f.split("=", 1) for f in line.split())
        res[kv["shape"]] = (float(kv["gflops_median"]), float(kv["gflops_min"]), float(kv["gflops_max"]))
        name = kv["kernel"]
    return res, name, " ".join(cmd)


def run_numpy(python, threads, runs, specs, clock):
    env = dict(os.environ)
    removed = [v for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if env.pop(v, None) is not None]
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[v] = str(threads)
    proc = subprocess.run([python, "-c", NUMPY_SIDE, str(runs), clock, str(threads)] + specs, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return None, proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed", removed
    res, info = {}, {}
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        if "info" in d:
            info = d["info"]
        else:
            res[d["shape"]] = (d["median"], d["min"], d["max"])
    return res, info, removed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", help="path of bench_gemm (default: build/tools/bench_gemm or $FRUGAL_BENCH_GEMM)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per shape; median and min-max reported")
    ap.add_argument("--kernel", help="force a frugal kernel family (avx512f, avx2+fma, sse2, ...)")
    ap.add_argument("--quick", action="store_true", help="square shapes only")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="wall time (default), or process CPU time / threads on both sides, which other load "
                         "on a shared machine disturbs less")
    ap.add_argument("--python", default="/usr/bin/python3", help="python with numpy for the BLAS side")
    args = ap.parse_args()

    bench = find_bench(args.bench)
    if not bench or not os.access(bench, os.X_OK):
        sys.exit("compare_cpu.py: bench_gemm not found%s; build it (ninja -C build tools/bench_gemm) or pass "
                 "--bench" % (" at " + bench if bench else ""))
    shapes = [("n=%d" % n, "%dx%dx%d:nn" % (n, n, n)) for n in SQUARE] + ([] if args.quick else MODEL_S)
    specs = [s for _, s in shapes]

    have_numpy = subprocess.run([args.python, "-c", "import numpy"], capture_output=True).returncode == 0
    if not have_numpy:
        print("numpy not found for %s: only frugal's figures follow (apt-get install -y python3-numpy "
              "python3-threadpoolctl libopenblas0-pthread for the comparison)" % args.python)
    print("frugal: %s    numpy: %s" % (bench, args.python if have_numpy else "absent"))
    print("GFLOP/s = median of %d runs (min-max), %s; ratio = frugal median / numpy median" % (
        args.runs, "wall time" if args.clock == "wall" else "process CPU time / threads"))

    summary = []
    for t in [int(x) for x in args.threads.split(",") if x]:
        # Shape by shape, frugal then numpy, so that load from other processes hits both sides alike.
        fr, npres, kname, info, removed, cmd = {}, ({} if have_numpy else None), "?", {}, [], ""
        for spec in specs:
            r, kname, cmd1 = run_frugal(bench, t, args.runs, [spec], args.kernel, args.clock)
            fr.update(r)
            cmd = cmd1.replace(spec, "MxNxK:TT")
            if have_numpy and npres is not None:
                r, info1, removed = run_numpy(args.python, t, args.runs, [spec], args.clock)
                if r is None:
                    npres, info = None, info1
                else:
                    npres.update(r)
                    info = info1
        print("\n== %d thread%s ==  frugal kernel %s  (%s)" % (t, "" if t == 1 else "s", kname, cmd))
        if have_numpy:
            if npres is None:
                print("numpy side failed: %s" % info)
            else:
                print("numpy %s, BLAS: %s; unset for numpy only: %s; OPENBLAS_NUM_THREADS=%d" % (
                    info.get("numpy"), info.get("blas"), ", ".join(removed) or "none were set", t))
        print("%-14s %-16s %26s %26s %7s" % ("shape", "MxNxK:TT", "frugal GFLOP/s", "numpy GFLOP/s", "ratio"))
        for label, spec in shapes:
            f = fr.get(spec)
            fs = "%7.1f (%6.1f-%6.1f)" % f if f else "-"
            ns, ratio = "-", "-"
            if npres and spec in npres:
                n = npres[spec]
                ns = "%7.1f (%6.1f-%6.1f)" % n
                if f:
                    ratio = "%.2f" % (f[0] / n[0])
                    summary.append((t, label, f[0] / n[0]))
            print("%-14s %-16s %26s %26s %7s" % (label, spec, fs, ns, ratio))
    if summary:
        sq = [r for t, l, r in summary if l.startswith("n=")]
        print("\nsquare n=256..2048: ratio min %.2f, max %.2f (target >= 0.80)" % (min(sq), max(sq)))


if __name__ == "__main__":
    main()
