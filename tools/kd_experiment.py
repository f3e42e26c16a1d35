#!/usr/bin/python3
# The knowledge-distillation experiment of the README: the teacher (tools/configs/kd_teacher.ini), then for each
# seed the student alone and the distilled student on the same schedule, and their median test accuracies.
# Usage: python3 tools/kd_experiment.py [--frugal build/tools/frugal] [--out runs/kd] [--seeds 1,2,3]
#        [--teacher CKPT] [--alone tools/configs/kd_student_alone.ini] [--distill tools/configs/kd_distill.ini]
#        [--threads N] [--device D]
# Runs already finished in --out (their .json) are reused, so an interrupted experiment continues where it stopped.
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run(frugal, args, out_dir, name, common):
    """one frugal command with --json and its JSON (reused when already there)"""
    js = os.path.join(out_dir, name + ".json")
    if os.path.exists(js):
        with open(js) as f:
            return json.load(f)
    cmd = [frugal] + args + ["--out", os.path.join(out_dir, name), "--json"] + common
    print("$ " + " ".join(cmd), flush=True)
    t0 = time.monotonic()
    with open(os.path.join(out_dir, name + ".err"), "w") as err:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    if r.returncode != 0:
        sys.exit("kd_experiment: %s failed (exit %d), see %s.err" % (name, r.returncode, os.path.join(out_dir, name)))
    res = json.loads(r.stdout)
    print("  %.0f s" % (time.monotonic() - t0), flush=True)
    tmp = js + ".tmp"
    with open(tmp, "w") as f:
        f.write(r.stdout)
    os.replace(tmp, js)
    return res


def main():
    ap = argparse.ArgumentParser(description="The 3-seed knowledge-distillation comparison: student alone vs distilled student.")
    ap.add_argument("--frugal", default=os.path.join(ROOT, "build", "tools", "frugal"))
    ap.add_argument("--out", default="runs/kd")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--teacher", help="a trained teacher checkpoint (default: train one with kd_teacher.ini)")
    ap.add_argument("--alone", default=os.path.join(HERE, "configs", "kd_student_alone.ini"))
    ap.add_argument("--distill", default=os.path.join(HERE, "configs", "kd_distill.ini"))
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of each run (0: frugal's default)")
    ap.add_argument("--device", help="device of each run (default: frugal's)")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s]
    if not seeds:
        sys.exit("kd_experiment: --seeds needs at least one seed")
    for f in (a.frugal, a.alone, a.distill):
        if not os.path.exists(f):
            sys.exit("kd_experiment: %s: no such file" % f)
    os.makedirs(a.out, exist_ok=True)
    common = (["--threads", str(a.threads)] if a.threads > 0 else []) + (["--device", a.device] if a.device else [])

    teacher = a.teacher
    if not teacher:
        tj = run(a.frugal, ["train", "--config", os.path.join(HERE, "configs", "kd_teacher.ini"), "--seed", "1"],
                 a.out, "teacher", common)
        teacher = tj["checkpoint"]
        print("teacher %s: test accuracy %.2f%%" % (tj["model"], 100 * tj["test_accuracy"]), flush=True)

    rows = []
    for s in seeds:
        al = run(a.frugal, ["train", "--config", a.alone, "--seed", str(s)], a.out, "alone%d" % s, common)
        kd = run(a.frugal, ["distill", "--config", a.distill, "--teacher", teacher, "--seed", str(s)], a.out,
                 "distill%d" % s, common)
        rows.append((s, al, kd))
        print("seed %d: student alone %.2f%% (val %.2f%%), distilled %.2f%% (val %.2f%%)" %
              (s, 100 * al["test_accuracy"], 100 * al["val_accuracy"], 100 * kd["test_accuracy"], 100 * kd["val_accuracy"]),
              flush=True)

    ma = statistics.median(r[1]["test_accuracy"] for r in rows)
    mk = statistics.median(r[2]["test_accuracy"] for r in rows)
    print("teacher %s (test %.2f%%) -> student %s; %s vs %s" %
          (rows[0][2]["teacher_model"], 100 * rows[0][2]["teacher_test_accuracy"], rows[0][2]["model"],
           os.path.basename(a.distill), os.path.basename(a.alone)))
    print("median test accuracy over seeds %s: student alone %.2f%%, distilled %.2f%%, difference %+.2f points" %
          (a.seeds, 100 * ma, 100 * mk, 100 * (mk - ma)))


if __name__ == "__main__":
    main()
