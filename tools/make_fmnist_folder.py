#!/usr/bin/python3
"""Writes a folder of photos made from Fashion-MNIST, as a user's own photo collection would look: RGB JPEGs of
SIZE x SIZE pixels (bicubic upscale of the 28x28 originals) in one directory per class, for `folder:` datasets.

usage: /usr/bin/python3 tools/make_fmnist_folder.py OUT [--size 224] [--train-per-class 100] [--test-per-class 100]
                                                        [--classes 0-9] [--quality 90] [--seed 1]
OUT/train/<k>_<name>/<index>.jpg from the training split, OUT/test/... from the test split; the class directories
sort in Fashion-MNIST's order. The images per class are a seeded random choice. Reads the IDX files from
$FRUGAL_DATA[/fashion-mnist] or /usr/share/datasets/fashion-mnist (Debian package dataset-fashion-mnist).
Needs numpy and Pillow (python3-numpy, python3-pil)."""
import argparse, gzip, os, struct, sys

import numpy as np
from PIL import Image

NAMES = ['T-shirt_top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle_boot']

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('out')
p.add_argument('--size', type=int, default=224)
p.add_argument('--train-per-class', type=int, default=100)
p.add_argument('--test-per-class', type=int, default=100)
p.add_argument('--classes', default='0-9', help='e.g. 5-9 or 0,2,4')
p.add_argument('--quality', type=int, default=90)
p.add_argument('--seed', type=int, default=1)
args = p.parse_args()


def classes(spec):
    out = []
    for part in spec.split(','):
        a, _, b = part.partition('-')
        out += range(int(a), int(b or a) + 1)
    if not out or min(out) < 0 or max(out) > 9:
        sys.exit(f'--classes {spec}: expected classes 0..9 like 5-9 or 0,2,4')
    return sorted(set(out))


def data_dir():
    for d in [os.environ.get('FRUGAL_DATA', ''), '/usr/share/datasets']:
        for sub in ['fashion-mnist', '']:
            path = os.path.join(d, sub) if d else ''
            if path and os.path.exists(os.path.join(path, 'train-images-idx3-ubyte.gz')):
                return path
    sys.exit('Fashion-MNIST not found: install dataset-fashion-mnist or set FRUGAL_DATA')


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack('>HBB', data[:4])
    if zero != 0 or dtype != 8:
        sys.exit(f'{path}: not a u8 IDX file')
    dims = struct.unpack('>' + 'I' * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


src = data_dir()
rng = np.random.default_rng(args.seed)
ks = classes(args.classes)
for split, prefix, per in [('train', 'train', args.train_per_class), ('test', 't10k', args.test_per_class)]:
    images = idx(os.path.join(src, f'{prefix}-images-idx3-ubyte.gz'))
    labels = idx(os.path.join(src, f'{prefix}-labels-idx1-ubyte.gz'))
    for k in ks:
        pick = np.flatnonzero(labels == k)
        pick = np.sort(rng.choice(pick, size=min(per, len(pick)), replace=False))
        d = os.path.join(args.out, split, f'{k}_{NAMES[k]}')
        os.makedirs(d, exist_ok=True)
        for i in pick:
            im = Image.fromarray(images[i]).resize((args.size, args.size), Image.BICUBIC).convert('RGB')
            im.save(os.path.join(d, f'{i:05d}.jpg'), quality=args.quality)
    print(f'{split}: {len(ks)} classes x {per} images of {args.size}x{args.size} in {os.path.join(args.out, split)}')
