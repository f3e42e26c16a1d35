#!/usr/bin/python3
"""Side-by-side input pipeline on a folder of photos: frugal (build/tools/bench_input: decode + random resized crop
+ flip at load on T decoding threads, normalisation to f32 NCHW) vs a PyTorch DataLoader with T worker processes and
torchvision transforms (ImageFolder, RandomResizedCrop(224), RandomHorizontalFlip, ToTensor, Normalize), one epoch
each, alternating, repeated. Peak memory: frugal's max RSS vs the sum over PyTorch's processes (main + workers),
sampled every 20 ms, both as RSS and as PSS (shared pages split between the processes that map them). Speed is
given per wall-clock second and per CPU-second (user + system time of all the processes of a run: robust to other
load on a shared machine).

usage: /usr/bin/python3 tools/compare_input_pipeline.py [--dir /tmp/frugal-photos] [--images 5000] [--threads 2]
           [--repeats 3] [--batch 32] [--bench build/tools/bench_input] [--scaling 1000]
The folder is made on first use (10 classes of synthetic photo-like JPEGs, 256-500 px per side, quality 90).
--scaling N also runs frugal on the first N images to show that its peak RSS does not grow with the image count."""
import argparse, json, os, resource, statistics, subprocess, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument('--dir', default='/tmp/frugal-photos')
p.add_argument('--images', type=int, default=5000)
p.add_argument('--threads', type=int, default=2)
p.add_argument('--repeats', type=int, default=3)
p.add_argument('--batch', type=int, default=32)
p.add_argument('--size', type=int, default=224)
p.add_argument('--bench', default='build/tools/bench_input')
p.add_argument('--scaling', type=int, default=1000, help='0 = skip the RSS-vs-image-count run')
args = p.parse_args()


def make_folder(root, n):
    """photo-like images: 1/f noise (sums of upsampled random fields), a few shapes, JPEG quality 90"""
    import numpy as np
    from PIL import Image, ImageDraw
    done = os.path.join(root, '.complete')
    if os.path.exists(done) and open(done).read().strip() == str(n):
        return
    print(f'making {n} JPEGs in {root} ...', file=sys.stderr)
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = f'class{i % 10}'
        os.makedirs(os.path.join(root, cls), exist_ok=True)
        h, w = (int(v) for v in rng.integers(256, 501, 2))
        img = np.zeros((h, w, 3), np.float32)
        for octave in range(1, 7):
            s = 2 ** octave
            small = rng.normal(0, 1, (max(2, h // s), max(2, w // s), 3)).astype(np.float32)
            up = np.stack([np.asarray(Image.fromarray(small[:, :, k]).resize((w, h), Image.BICUBIC)) for k in range(3)], 2)
            img += up * (s ** 0.9) * 2.2
        img += rng.normal(0, 4, (h, w, 3))
        img = img - img.mean((0, 1)) + rng.uniform(60, 190, 3)
        im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(im)
        for _ in range(int(rng.integers(2, 8))):
            x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
            x1, y1 = x0 + int(rng.integers(10, w // 2)), y0 + int(rng.integers(10, h // 2))
            col = tuple(int(v) for v in rng.integers(0, 256, 3))
            (d.ellipse if rng.random() < 0.5 else d.rectangle)((x0, y0, x1, y1), fill=col)
        im.save(os.path.join(root, cls, f'{i:05d}.jpg'), quality=90)
    open(done, 'w').write(str(n))


class Sampler:
    """peak of the summed RSS and PSS (kB) of a process and its children, sampled every 20 ms"""

    def __init__(self, pid):
        self.pid, self.rss, self.pss, self.stop = pid, 0, 0, False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def tree(self):
        pids, todo = [], [self.pid]
        while todo:
            q = todo.pop()
            pids.append(q)
            try:
                for t in os.listdir(f'/proc/{q}/task'):
                    with open(f'/proc/{q}/task/{t}/children') as f:
                        todo += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return pids

    def run(self):
        while not self.stop:
            rss = pss = 0
            for q in self.tree():
                try:
                    with open(f'/proc/{q}/smaps_rollup') as f:
                        for line in f:
                            if line.startswith('Rss:'):
                                rss += int(line.split()[1])
                            elif line.startswith('Pss:'):
                                pss += int(line.split()[1])
                except OSError:
                    pass
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            time.sleep(0.02)

    def done(self):
        self.stop = True
        self.t.join()
        return self.rss, self.pss


TORCH = r'''
import json, sys, time, torch, torchvision
from torchvision import datasets, transforms
root, threads, batch, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(1)
tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
                         transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
t0 = time.perf_counter()
ds = datasets.ImageFolder(root, transform=tf)
t_open = time.perf_counter() - t0
dl = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=threads)
n, s, t0 = 0, 0.0, time.perf_counter()
for x, y in dl:
    n += x.shape[0]
    s += float(x[0, 0, 0, 0])
secs = time.perf_counter() - t0
print(json.dumps({"images": n, "seconds": secs, "images_per_s": n / secs, "open_seconds": t_open,
                  "torch": torch.__version__, "torchvision": torchvision.__version__}))
'''


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)  # every finished descendant that was waited for
    return r.ru_utime + r.ru_stime


def run(cmd):
    cpu0 = cpu_children()
    pr = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    smp = Sampler(pr.pid)
    out, err = pr.communicate()
    cpu = cpu_children() - cpu0
    rss, pss = smp.done()
    if pr.returncode != 0:
        sys.exit(f'{cmd[0]} failed: {err.strip()}')
    r = json.loads(out.strip().splitlines()[-1])
    r['peak_rss_kb'], r['peak_pss_kb'] = rss, pss
    r['images_per_cpu_s'] = r['images'] / cpu
    return r


make_folder(args.dir, args.images)
T = args.threads
fr_cmd = [args.bench, args.dir, '--threads', str(T), '--batch', str(args.batch), '--size', str(args.size)]
pt_cmd = [sys.executable, '-c', TORCH, args.dir, str(T), str(args.batch), str(args.size)]
rows = []
for rep in range(args.repeats):
    pt = run(pt_cmd)
    fr = run(fr_cmd)
    load = os.getloadavg()[0]
    rows.append((fr, pt, load))
    print(f'repeat {rep + 1}: frugal {fr["images_per_s"]:6.1f} img/s {fr["images_per_cpu_s"]:6.1f} img/CPU-s '
          f'{fr["peak_rss_kb"] / 1024:5.1f} MB | PyTorch {pt["images_per_s"]:6.1f} img/s '
          f'{pt["images_per_cpu_s"]:6.1f} img/CPU-s {pt["peak_rss_kb"] / 1024:5.1f} MB RSS '
          f'({pt["peak_pss_kb"] / 1024:.1f} MB PSS) | x{fr["images_per_s"] / pt["images_per_s"]:.2f} wall, '
          f'x{fr["images_per_cpu_s"] / pt["images_per_cpu_s"]:.2f} CPU | load {load:.1f}', flush=True)
speed = [f['images_per_s'] / p['images_per_s'] for f, p, _ in rows]
cpu = [f['images_per_cpu_s'] / p['images_per_cpu_s'] for f, p, _ in rows]
rss = [f['peak_rss_kb'] / p['peak_rss_kb'] for f, p, _ in rows]
pss = [f['peak_pss_kb'] / p['peak_pss_kb'] for f, p, _ in rows]
print(f'\n{args.images} JPEGs 256-500 px -> {args.size}x{args.size}, batch {args.batch}, {T} decoding threads / worker '
      f'processes, {os.cpu_count()} cores; PyTorch {rows[0][1]["torch"]}, torchvision {rows[0][1]["torchvision"]}')
print(f'speed ratio frugal/PyTorch: median {statistics.median(speed):.2f} (min {min(speed):.2f}, max {max(speed):.2f}) '
      f'per wall second, {statistics.median(cpu):.2f} (min {min(cpu):.2f}, max {max(cpu):.2f}) per CPU-second')
print(f'peak RSS ratio frugal/PyTorch: median {statistics.median(rss):.3f} (PSS ratio {statistics.median(pss):.3f})')
print(f'frugal open (directory listing) {statistics.median(f["open_seconds"] for f, _, _ in rows):.3f} s, '
      f'PyTorch ImageFolder {statistics.median(p["open_seconds"] for _, p, _ in rows):.3f} s')
if args.scaling:
    small = run(fr_cmd + ['--limit', str(args.scaling)])
    print(f'frugal peak RSS on {args.scaling} images {small["peak_rss_kb"] / 1024:.1f} MB, on {args.images} '
          f'{statistics.median(f["peak_rss_kb"] for f, _, _ in rows) / 1024:.1f} MB')
