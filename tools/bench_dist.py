#!/usr/bin/python3
# Data-parallel training measured side by side on one machine (issue 16's targets), each configuration its own
# `frugal train --json` run, interleaved and repeated so machine load hits all alike; medians reported:
#   speedup: model s, Fashion-MNIST, global batch 128: 1 rank x 1 thread against mpirun -np 2 x 1 thread
#            (target: >= 1.7x the images/s, final test accuracy within 0.3 points);
#   balance: unlike ranks, rank 0 on the CPU path with 1 thread and a slower rank 1; each alone at batch 128, then
#            together with --balance speed (target: >= 0.9x the sum of the two standalone speeds). How rank 1 is slow:
#     --throttle sleep (default): FRUGAL_SLOWDOWN=--factor on rank 1: each compute step sleeps (factor - 1) times
#            its own length before the gradient sum, so the step takes factor times as long while the messages travel
#            at full speed. That is what a slower device is: a slower GPU or CPU computes longer, but its rank answers
#            the collectives at once. While it sleeps it leaves its core free, as a device of its own would.
#     --throttle sigstop: rank 1 is stopped and continued (SIGSTOP/SIGCONT) so that it runs --duty of every --period
#            seconds. A poor model of a slower device: a stopped process also stalls the synchronous gradient sum
#            (the other rank waits for it up to (1 - duty) x period at every step), which no slower device does.
#     --slow-device cl:0:0 (with --throttle none): rank 1 on PoCL with one thread, the issue's own example. On a
#            2-core machine PoCL's host thread and rank 0 compete for the cores, so it measures the machine as well.
# Usage: /usr/bin/python3 tools/bench_dist.py [--frugal build/tools/frugal] [--repeats 2] [--epochs 3]
#        [--parts speedup,balance] [--throttle sleep|sigstop|none] [--factor 2.5] [--duty 0.4] [--slow-device cpu]
#        [--bind-to core] [--balance-limit 12800] [--standalone apart|together]
# --standalone together runs the two standalone processes at the same time, so that they share the machine with
# other jobs as the job's two ranks do (on an idle machine: the same speeds as apart, the default).
# The check: /usr/bin/python3 tools/bench_dist.py --parts balance --repeats 3 --balance-limit 38400 (about 4
# minutes on an idle 2-core machine: measure on an idle one, other jobs decide the result on a shared one);
# FRUGAL_DEBUG=dist on a run shows where each rank's steps went (computing, slowed down, waiting, sum) and when
# --balance speed moved rows during training.
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def throttled_pid(root):
    """root itself, or the process under it whose environment holds BENCH_THROTTLE=1 (rank 1 under mpirun)"""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            with open("/proc/%d/environ" % pid, "rb") as f:
                if b"BENCH_THROTTLE=1\0" in f.read():
                    return pid
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return None


def throttle(proc, duty, stop, period):
    """runs the marked process duty of each period, stopped the rest of it"""
    pid = None
    while pid is None and proc.poll() is None and not stop.is_set():
        pid = throttled_pid(proc.pid)
        time.sleep(0.01)
    while pid is not None and proc.poll() is None and not stop.is_set():
        try:
            time.sleep(period * duty)
            os.kill(pid, signal.SIGSTOP)
            time.sleep(period * (1 - duty))
            os.kill(pid, signal.SIGCONT)
        except OSError:
            break
    if pid is not None:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass


def start(cmd, env_extra=None, duty=None, period=0.02):
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()
    t = threading.Thread(target=throttle, args=(p, duty, stop, period)) if duty else None
    if t:
        t.start()
    return cmd, p, stop, t


def finish(job):
    cmd, p, stop, t = job
    out, err = p.communicate()
    stop.set()
    if t:
        t.join()
    if p.returncode != 0:
        sys.exit("bench_dist: %s -> %d\n%s" % (" ".join(cmd), p.returncode, err[-2000:]))
    return json.loads(out.strip().splitlines()[-1])


def run(cmd, env_extra=None, duty=None, period=0.02):
    return finish(start(cmd, env_extra, duty, period))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frugal", default="build/tools/frugal")
    ap.add_argument("--mpirun", default="mpirun")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--parts", default="speedup,balance")
    ap.add_argument("--slow-device", default="cpu")
    ap.add_argument("--throttle", default="sleep", choices=["sleep", "sigstop", "none"], help="how rank 1 is slower")
    ap.add_argument("--factor", type=float, default=2.5, help="sleep: rank 1's steps take this many times as long")
    ap.add_argument("--duty", type=float, default=0.4, help="sigstop: share of the time the throttled rank runs")
    ap.add_argument("--period", type=float, default=0.02, help="sigstop: seconds of one stop/continue cycle")
    ap.add_argument("--balance-limit", type=int, default=12800, help="training images of the balance runs")
    ap.add_argument("--bind-to", default="core", help="mpirun's --bind-to for the ranks (core, mpirun's own default: "
                    "each rank and its loader thread on a core of its own; none: free to move, which on an idle 2-core "
                    "machine lets the scheduler put both ranks on one core for a while, 0.76-0.93 of the sum against "
                    "0.88-0.96 bound, and may suit a machine that other jobs share)")
    ap.add_argument("--standalone", default="apart", choices=["apart", "together"],
                    help="balance: the two standalone runs one after the other (apart), or at the same time as two "
                    "independent processes (together: under the same machine load as the two ranks of the job, which "
                    "adds one process to a shared machine's load; on an idle machine both give the same speeds)")
    a = ap.parse_args()
    mpi = [a.mpirun, "--oversubscribe", "--allow-run-as-root", "--bind-to", a.bind_to]
    one = {"FRUGAL_THREADS": "1", "POCL_MAX_PTHREAD_COUNT": "1"}
    common = ["train", "--data", "fmnist", "--model", "s", "--batch", "128", "--labels", "0", "--val", "0", "--json"]
    parts = a.parts.split(",")
    print("load average at start: %.2f (%d cores; other jobs share them); mpirun --bind-to %s"
          % (loadavg(), os.cpu_count(), a.bind_to))

    if "speedup" in parts:
        args = common + ["--epochs", str(a.epochs), "--device", "cpu"]
        ips1, ips2, acc1, acc2 = [], [], [], []
        for r in range(a.repeats):
            l0 = loadavg()
            s1 = run([a.frugal] + args + ["--threads", "1"], one)
            s2 = run(mpi + ["-x", "FRUGAL_THREADS=1", "-np", "2", a.frugal] + args, one)
            ips1.append(s1["train_images_per_second"])
            ips2.append(s2["train_images_per_second"])
            acc1.append(100 * s1["test_accuracy"])
            acc2.append(100 * s2["test_accuracy"])
            print("run %d (load %.2f..%.2f): 1 rank %.0f img/s, test %.2f%%; 2 ranks %.0f img/s, test %.2f%%; ratio %.2f"
                  % (r + 1, l0, loadavg(), ips1[-1], acc1[-1], ips2[-1], acc2[-1], ips2[-1] / ips1[-1]))
        ratios = [b / x for x, b in zip(ips1, ips2)]
        print("speedup: median %.2fx (runs %s), target >= 1.7x; test accuracy 1 rank %.2f%%, 2 ranks %.2f%% "
              "(median difference %.2f points, target <= 0.3)"
              % (statistics.median(ratios), ", ".join("%.2f" % x for x in ratios), statistics.median(acc1),
                 statistics.median(acc2), statistics.median([abs(x - y) for x, y in zip(acc1, acc2)])))

    if "balance" in parts:
        args = common + ["--epochs", "1", "--train-limit", str(a.balance_limit), "--test", "none"]
        slow_env = dict(one, BENCH_THROTTLE="1")
        duty = a.duty if a.throttle == "sigstop" else None
        mark = ["BENCH_THROTTLE=1"]
        if a.throttle == "sleep":
            slow_env["FRUGAL_SLOWDOWN"] = str(a.factor)
            mark.append("FRUGAL_SLOWDOWN=%g" % a.factor)
        how = {"sleep": "steps slowed %gx by FRUGAL_SLOWDOWN" % a.factor, "none": "not throttled",
               "sigstop": "running %.0f%% of every %g ms" % (100 * a.duty, 1e3 * a.period)}[a.throttle]
        print("balance: rank 1 on %s, %s; standalone runs %s" % (a.slow_device, how, a.standalone))
        fast, slow, both, shares = [], [], [], None
        for r in range(a.repeats):
            l0 = loadavg()
            jf = start([a.frugal] + args + ["--device", "cpu", "--threads", "1"], one)
            if a.standalone == "apart":
                f = finish(jf)
            js = start([a.frugal] + args + ["--device", a.slow_device, "--threads", "1"], slow_env, duty, a.period)
            if a.standalone == "together":
                f = finish(jf)
            s = finish(js)
            x = ["-x", "FRUGAL_THREADS=1", "-x", "POCL_MAX_PTHREAD_COUNT=1"]  # Open MPI: -x for its own part only
            b = run(mpi + x + ["-np", "1", a.frugal] + args + ["--device", "cpu", "--balance", "speed", ":"] + x +
                    ["-np", "1", "env"] + mark + [a.frugal] + args + ["--device", a.slow_device, "--balance", "speed"],
                    one, duty, a.period)
            fast.append(f["train_images_per_second"])
            slow.append(s["train_images_per_second"])
            both.append(b["train_images_per_second"])
            shares = b.get("batch_shares")
            print("run %d (load %.2f..%.2f): rank 0 alone %.0f img/s, rank 1 alone %.0f img/s, both with --balance "
                  "speed %.0f img/s (shares %s): %.2f of the sum"
                  % (r + 1, l0, loadavg(), fast[-1], slow[-1], both[-1], shares,
                     both[-1] / (fast[-1] + slow[-1])))
        ratios = [b / (x + y) for x, y, b in zip(fast, slow, both)]
        print("balance: median %.2f of the sum of the standalone speeds (runs %s), target >= 0.9"
              % (statistics.median(ratios), ", ".join("%.2f" % x for x in ratios)))


if __name__ == "__main__":
    main()
