#!/usr/bin/python3
"""Side-by-side augmentation speed: frugal (CPU path, `frugal augment --bench`) vs OpenCV and torchvision-on-PIL,
on 224x224x3 uint8, one thread (images per CPU-second, fair on a loaded machine) and all cores (wall clock).

usage: /usr/bin/python3 tools/compare_augment.py [--frugal BUILD/tools/frugal] [--baseline OLD/frugal]
                                                 [--seconds 2] [--repeats 5] [--threads 1]
Needs Debian's python3-opencv, python3-pil, python3-torchvision. Prints a table and the ratios.

Each repeat measures every row side by side (frugal, then the reference, then the baseline binary if given);
the table shows the median over the repeats and the spread (min-max) of the ratio, with the load average.
`frugal augment --bench` cycles through a batch of 64 distinct images (9.6 MB, beyond the caches), so the
references are timed both on 64 distinct images ('64 img', the same working set) and on one image that
stays in cache ('hot', how their own benchmarks usually run); the ratio column uses the same working set,
the 'vs hot' column the single cached image."""
import argparse, json, os, statistics, subprocess, time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument('--frugal', default='build/tools/frugal')
p.add_argument('--baseline', default=None, help='a second frugal binary (e.g. before a change), timed alongside')
p.add_argument('--seconds', type=float, default=2.0)
p.add_argument('--repeats', type=int, default=1)
p.add_argument('--size', type=int, default=224)
p.add_argument('--threads', default='1,all', help="comma list of thread counts, 'all' = every core")
p.add_argument('--only', default='', help='comma list of substrings: time only the rows whose name has one')
args = p.parse_args()
S = args.size
BATCH = 64  # frugal's --bench batch
rng = np.random.default_rng(0)


def make(seed):
    r = np.random.default_rng(seed)
    return (np.add.outer(np.arange(S) // 3, np.arange(S) // 2)[:, :, None] + r.integers(0, 16, (S, S, 3))).astype(np.uint8)


img = make(0)
imgs = [make(i) for i in range(BATCH)]


def rate(fn, threads, many, seconds=args.seconds):
    """images/s: per CPU-second for one thread (fair on a loaded shared machine), per wall second otherwise"""
    clock = time.process_time if threads == 1 else time.perf_counter
    batch = imgs if many else [img]
    for im in batch:
        fn(im)
    n, t0, w0 = 0, clock(), time.perf_counter()
    while time.perf_counter() - w0 < seconds:
        for im in batch:
            fn(im)
        n += len(batch)
    return n / (clock() - t0)


def frugal(binary, policy, threads):
    out = subprocess.run([binary, 'augment', '--bench', str(S), '--policy', policy, '--threads', str(threads),
                          '--bench-seconds', str(args.seconds)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r['images_per_cpu_s'] if threads == 1 else r['images_per_s']


import cv2
ncores = os.cpu_count()
M = cv2.getRotationMatrix2D(((S - 1) / 2, (S - 1) / 2), 30, 1.0)
src = np.float32([[0, 0], [S - 1, 0], [S - 1, S - 1], [0, S - 1]])
P = cv2.getPerspectiveTransform(src, src + np.float32([[10, 5], [-8, 12], [-15, -6], [9, -11]]))
rows = [
    ('rotate 30 bilinear', 'rotate(degrees=30,interp=bilinear,p=1)', 'cv2.warpAffine',
     lambda im: cv2.warpAffine(im, M, (S, S), flags=cv2.INTER_LINEAR)),
    ('rotate 30 nearest', 'rotate(degrees=30,interp=nearest,p=1)', 'cv2.warpAffine',
     lambda im: cv2.warpAffine(im, M, (S, S), flags=cv2.INTER_NEAREST)),
    ('perspective bilinear', 'perspective(distortion=0.2,p=1,interp=bilinear)', 'cv2.warpPerspective',
     lambda im: cv2.warpPerspective(im, P, (S, S), flags=cv2.INTER_LINEAR)),
    ('hflip', 'hflip(p=1)', 'cv2.flip', lambda im: cv2.flip(im, 1)),
]
try:
    import torch
    import torchvision.transforms as T
    from PIL import Image
    pils = [Image.fromarray(im) for im in imgs]
    pil_of = {id(im): pl for im, pl in zip(imgs, pils)}
    pil_of[id(img)] = Image.fromarray(img)
    ra = T.RandAugment(num_ops=2, magnitude=9)
    # torchvision-on-PIL runs one image at a time in one Python thread: its all-cores figure is the same
    rows.append(('RandAugment(2,9)', 'randaugment(n=2,m=9)', 'torchvision on PIL', lambda im: ra(pil_of[id(im)])))
except ImportError as e:
    torch = None
    print('torchvision not available:', e)

if args.only:
    rows = [r for r in rows if any(k in r[0] for k in args.only.split(','))]
thread_list = [ncores if t == 'all' else int(t) for t in args.threads.split(',')]
res = {}  # (name, threads) -> list of (frugal, ref64, refhot, baseline)
for rep in range(args.repeats):
    for threads in thread_list:
        cv2.setNumThreads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        for name, policy, ref, fn in rows:
            f = frugal(args.frugal, policy, threads)
            r64 = rate(fn, threads, True)
            rhot = rate(fn, threads, False)
            b = frugal(args.baseline, policy, threads) if args.baseline else float('nan')
            res.setdefault((name, threads), []).append((f, r64, rhot, b))

load = os.getloadavg()
print(f'{args.repeats} repeat(s) of {args.seconds:g} s per measurement; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} '
      f'on {ncores} cores; medians, ratio spread min-max')
hdr = f'{"op (224x224x3 u8)":22} {"thr":>3} {"frugal":>7} {"reference":>20} {"64 img":>7} {"hot":>7} {"ratio":>5} {"spread":>11} {"vs hot":>6}'
if args.baseline:
    hdr += f' {"before":>7} {"b.ratio":>7} {"b.vs hot":>8} {"speedup":>7}'
print(hdr)
for name, policy, ref, fn in rows:
    for threads in thread_list:
        v = res[(name, threads)]
        med = lambda i: statistics.median(x[i] for x in v)
        ratios = [x[0] / x[1] for x in v]
        line = (f'{name:22} {threads:3d} {med(0):7.0f} {ref:>20} {med(1):7.0f} {med(2):7.0f} {statistics.median(ratios):5.2f} '
                f'{min(ratios):5.2f}-{max(ratios):<5.2f} {statistics.median(x[0] / x[2] for x in v):6.2f}')
        if args.baseline:
            line += (f' {med(3):7.0f} {statistics.median(x[3] / x[1] for x in v):7.2f}'
                     f' {statistics.median(x[3] / x[2] for x in v):8.2f} {statistics.median(x[0] / x[3] for x in v):7.2f}')
        print(line)
