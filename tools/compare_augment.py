#!/usr/bin/python3
"""Side-by-side augmentation speed: frugal (CPU path, `frugal augment --bench`) vs OpenCV and torchvision-on-PIL,
on 224x224x3 uint8, one thread (images per CPU-second, fair on a loaded machine) and all cores (wall clock).

usage: /usr/bin/python3 tools/compare_augment.py [--frugal BUILD/tools/frugal] [--seconds 2]
Needs Debian's python3-opencv, python3-pil, python3-torchvision. Prints a table and the ratios."""
import argparse, json, os, subprocess, time

import numpy as np

p = argparse.ArgumentParser()
p.add_argument('--frugal', default='build/tools/frugal')
p.add_argument('--seconds', type=float, default=2.0)
p.add_argument('--size', type=int, default=224)
args = p.parse_args()
S = args.size
rng = np.random.default_rng(0)
img = (np.add.outer(np.arange(S) // 3, np.arange(S) // 2)[:, :, None] + rng.integers(0, 16, (S, S, 3))).astype(np.uint8)


def rate(fn, threads, seconds=args.seconds):
    """images/s: per CPU-second for one thread (fair on a loaded shared machine), per wall second otherwise"""
    clock = time.process_time if threads == 1 else time.perf_counter
    fn()
    n, t0, w0 = 0, clock(), time.perf_counter()
    while time.perf_counter() - w0 < seconds:
        fn()
        n += 1
    return n / (clock() - t0)


def frugal(policy, threads):
    out = subprocess.run([args.frugal, 'augment', '--bench', str(S), '--policy', policy, '--threads', str(threads),
                          '--bench-seconds', str(args.seconds)], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    return r['images_per_cpu_s'] if threads == 1 else r['images_per_s']


rows = []
import cv2
ncores = os.cpu_count()
M = cv2.getRotationMatrix2D(((S - 1) / 2, (S - 1) / 2), 30, 1.0)
src = np.float32([[0, 0], [S - 1, 0], [S - 1, S - 1], [0, S - 1]])
P = cv2.getPerspectiveTransform(src, src + np.float32([[10, 5], [-8, 12], [-15, -6], [9, -11]]))
for threads in (1, ncores):
    cv2.setNumThreads(threads)
    rows.append(('rotate 30 bilinear', threads, frugal('rotate(degrees=30,interp=bilinear,p=1)', threads), 'cv2.warpAffine',
                 rate(lambda: cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_LINEAR), threads)))
    rows.append(('rotate 30 nearest', threads, frugal('rotate(degrees=30,interp=nearest,p=1)', threads), 'cv2.warpAffine',
                 rate(lambda: cv2.warpAffine(img, M, (S, S), flags=cv2.INTER_NEAREST), threads)))
    rows.append(('perspective bilinear', threads, frugal('perspective(distortion=0.2,p=1,interp=bilinear)', threads),
                 'cv2.warpPerspective', rate(lambda: cv2.warpPerspective(img, P, (S, S), flags=cv2.INTER_LINEAR), threads)))
    rows.append(('hflip', threads, frugal('hflip(p=1)', threads), 'cv2.flip', rate(lambda: cv2.flip(img, 1), threads)))
try:
    import torch
    import torchvision.transforms as T
    from PIL import Image
    pil = Image.fromarray(img)
    ra = T.RandAugment(num_ops=2, magnitude=9)
    for threads in (1, ncores):
        torch.set_num_threads(threads)
        # torchvision-on-PIL runs one image at a time in one Python thread: its all-cores figure is the same
        rows.append(('RandAugment(2,9)', threads, frugal('randaugment(n=2,m=9)', threads), 'torchvision on PIL',
                     rate(lambda: ra(pil), threads)))
except ImportError as e:
    print('torchvision not available:', e)

print(f'{"op (224x224x3 u8)":24} {"threads":>7} {"frugal img/s":>13} {"reference":>22} {"ref img/s":>10} {"ratio":>6}')
for name, th, f, ref, r in rows:
    print(f'{name:24} {th:7d} {f:13.0f} {ref:>22} {r:10.0f} {f / r:6.2f}')
