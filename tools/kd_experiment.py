#!/usr/bin/python3
# The knowledge-distillation experiment of the README: the teacher (tools/configs/kd_teacher.ini; with --folds K,
# K fold teachers trained with train --fold F/K; with several configs, an ensemble of teachers), then for each seed
# the student alone and the distilled student on the same schedule, and their median test accuracies; with
# --reference, also a second student-alone config per seed (e.g. the best student alone when --alone is the control
# of a longer, more augmented schedule), so that a gain is not the schedule's.
# Usage: python3 tools/kd_experiment.py [--frugal build/tools/frugal] [--out runs/kd] [--seeds 1,2,3]
#        [--teacher CKPT[,CKPT...] | --teacher-config tools/configs/kd_teacher.ini[,MORE.ini...] [--folds K]]
#        [--alone tools/configs/kd_student_alone.ini] [--distill tools/configs/kd_distill.ini]
#        [--reference tools/configs/kd_student_alone.ini] [--threads N] [--device D]
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
    ap.add_argument("--teacher", help="trained teacher checkpoint(s), comma-separated: an ensemble (default: train "
                                      "them with --teacher-config)")
    ap.add_argument("--teacher-config", default=os.path.join(HERE, "configs", "kd_teacher.ini"),
                    help="the teacher's training config (default tools/configs/kd_teacher.ini); several, "
                         "comma-separated: an ensemble of teachers, each trained with its config")
    ap.add_argument("--folds", type=int, default=0,
                    help="K >= 2: train K fold teachers (train --fold F/K) and distill with --fold-teachers "
                         "(out-of-fold logits; the --distill config must not name a teacher)")
    ap.add_argument("--alone", default=os.path.join(HERE, "configs", "kd_student_alone.ini"))
    ap.add_argument("--distill", default=os.path.join(HERE, "configs", "kd_distill.ini"))
    ap.add_argument("--reference", help="another student-alone config trained for each seed too (e.g. "
                                        "tools/configs/kd_student_alone.ini): its median is printed beside the others")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads of each run (0: frugal's default)")
    ap.add_argument("--device", help="device of each run (default: frugal's)")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s]
    if not seeds:
        sys.exit("kd_experiment: --seeds needs at least one seed")
    if a.folds == 1 or a.folds < 0 or (a.folds and a.teacher):
        sys.exit("kd_experiment: --folds needs K >= 2 and no --teacher")
    configs = [c for c in a.teacher_config.split(",") if c]
    if a.folds and len(configs) != 1:
        sys.exit("kd_experiment: --folds needs one --teacher-config")
    for f in [a.frugal, a.alone, a.distill] + configs + ([a.reference] if a.reference else []):
        if not os.path.exists(f):
            sys.exit("kd_experiment: %s: no such file" % f)
    os.makedirs(a.out, exist_ok=True)
    common = (["--threads", str(a.threads)] if a.threads > 0 else []) + (["--device", a.device] if a.device else [])

    teacher_args = ["--teacher", a.teacher] if a.teacher else None
    if a.folds:
        ckpts = []
        for f in range(a.folds):
            tj = run(a.frugal, ["train", "--config", configs[0], "--seed", "1", "--fold", "%d/%d" % (f, a.folds)],
                     a.out, "teacher_fold%d" % f, common)
            ckpts.append(tj["checkpoint"])
            print("fold teacher %d/%d %s: test accuracy %.2f%%" % (f, a.folds, tj["model"], 100 * tj["test_accuracy"]),
                  flush=True)
        teacher_args = ["--fold-teachers", ",".join(ckpts)]
    elif not a.teacher:
        ckpts = []
        for i, c in enumerate(configs):  # the first one's run is "teacher", as before ensembles
            tj = run(a.frugal, ["train", "--config", c, "--seed", "1"], a.out, "teacher" + ("%d" % (i + 1) if i else ""),
                     common)
            ckpts.append(tj["checkpoint"])
            print("teacher %s (%s): test accuracy %.2f%%" % (tj["model"], os.path.basename(c), 100 * tj["test_accuracy"]),
                  flush=True)
        teacher_args = ["--teacher", ",".join(ckpts)]

    rows = []
    for s in seeds:
        al = run(a.frugal, ["train", "--config", a.alone, "--seed", str(s)], a.out, "alone%d" % s, common)
        kd = run(a.frugal, ["distill", "--config", a.distill] + teacher_args + ["--seed", str(s)], a.out,
                 "distill%d" % s, common)
        ref = run(a.frugal, ["train", "--config", a.reference, "--seed", str(s)], a.out, "reference%d" % s,
                  common) if a.reference else None
        rows.append((s, al, kd, ref))
        print("seed %d: student alone %.2f%% (val %.2f%%), distilled %.2f%% (val %.2f%%)%s" %
              (s, 100 * al["test_accuracy"], 100 * al["val_accuracy"], 100 * kd["test_accuracy"], 100 * kd["val_accuracy"],
               "; reference %.2f%% (val %.2f%%)" % (100 * ref["test_accuracy"], 100 * ref["val_accuracy"]) if ref else ""),
              flush=True)

    ma = statistics.median(r[1]["test_accuracy"] for r in rows)
    mk = statistics.median(r[2]["test_accuracy"] for r in rows)
    kd0 = rows[0][2]
    n = kd0.get("teachers", 1)
    print("%s %s (test %.2f%%%s) -> student %s; %s vs %s" %
          ("%d fold teachers" % n if kd0.get("out_of_fold") else "an ensemble of %d teachers" % n if n > 1 else "teacher",
           kd0["teacher_model"], 100 * kd0["teacher_test_accuracy"],
           ", their mean" if kd0.get("out_of_fold") else "", kd0["model"],
           os.path.basename(a.distill), os.path.basename(a.alone)))
    print("median test accuracy over seeds %s: student alone %.2f%%, distilled %.2f%%, difference %+.2f points" %
          (a.seeds, 100 * ma, 100 * mk, 100 * (mk - ma)))
    if a.reference:
        mr = statistics.median(r[3]["test_accuracy"] for r in rows)
        print("reference %s (student alone), median %.2f%%: distilled %+.2f points" %
              (os.path.basename(a.reference), 100 * mr, 100 * (mk - mr)))


if __name__ == "__main__":
    main()
