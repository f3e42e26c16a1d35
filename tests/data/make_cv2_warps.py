#!/usr/bin/python3
"""Writes tests/data/cv2_warps.bin: OpenCV 4.6 warpAffine/warpPerspective outputs (WARP_INVERSE_MAP, one thread) for
double matrices solved from fractional points, which float32 cannot represent. test_geometry runs the same matrices
through frugal's warp records (CPU path and OpenCL) and expects these bytes exactly. The point sets are the first
ones (from a fixed seed) where a float32 copy of the map changes some output values, so the test fails for a
record that rounds its map to float32.
    /usr/bin/python3 tests/data/make_cv2_warps.py      (needs Debian's python3-opencv)
Format, little endian: int32 count, H, W, C; per case int32 perspective, interp, border (frugal's: constant 0,
replicate 1, reflect-101 2), fill, 9 float64 (the map, output pixel -> source pixel), then H*W*C u8 (HWC). The
input image is the formula in image() (test_geometry.c computes the same)."""
import os
import struct

import cv2
import numpy as np

cv2.setNumThreads(1)
H, W, C = 45, 67, 1
BORDERS = ((cv2.BORDER_CONSTANT, 0, 37), (cv2.BORDER_REPLICATE, 1, 0), (cv2.BORDER_REFLECT_101, 2, 0))


def image():
    y, x = np.meshgrid(np.arange(H), np.arange(W), indexing='ij')
    return ((x * 7 + y * 13 + (x * y) % 17 * 9) % 256).astype(np.uint8)


def warp(img, m, persp, interp, border, fill):
    f = cv2.warpPerspective if persp else cv2.warpAffine
    return f(img, m if persp else m[:2], (W, H), flags=interp | cv2.WARP_INVERSE_MAP, borderMode=border,
             borderValue=fill)


img = image()
rng = np.random.default_rng(7)
cases, tries = [], 0
for persp, want in ((0, 2), (1, 1)):
    found = 0
    while found < want:
        tries += 1
        corners = np.float32([(0, 0), (W - 1, 0), (W - 1, H - 1), (0, H - 1)])
        src = corners + np.float32(rng.uniform(-3, 3, (4, 2))).round(2)
        dst = corners + np.float32(rng.uniform(-3, 3, (4, 2))).round(2)
        if persp:
            m = cv2.getPerspectiveTransform(src, dst)
        else:
            m = np.vstack([cv2.getAffineTransform(src[:3], dst[:3]), [0, 0, 1]])
        m32 = np.float32(m).astype(np.float64)
        outs, changed = [], 0
        for interp in (cv2.INTER_NEAREST, cv2.INTER_LINEAR, cv2.INTER_CUBIC):
            for border, ours, fill in BORDERS:
                out = warp(img, m, persp, interp, border, fill)
                changed += int(np.count_nonzero(warp(img, m32, persp, interp, border, fill) != out))
                outs.append((persp, interp, ours, fill, list(m.ravel()), out))
        if changed >= 2:
            cases += outs
            found += 1
            print('perspective' if persp else 'affine', 'map changes', changed, 'values when rounded to float32')
print(tries, 'point sets tried')
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cv2_warps.bin')
with open(path, 'wb') as f:
    f.write(struct.pack('<4i', len(cases), H, W, C))
    for persp, interp, border, fill, m, out in cases:
        f.write(struct.pack('<4i', persp, interp, border, fill))
        f.write(struct.pack('<9d', *m))
        f.write(out.astype(np.uint8).reshape(H, W, C).tobytes())
print(path, len(cases), 'cases')
