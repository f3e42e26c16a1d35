# PyTorch side of tests/bench_train.c: training images/s of the reference CNN "s" (docs/reference.md §8) on the
# CPU (forward + cross-entropy + backward + SGD(lr 0.01, momentum 0.9) step) and inference images/s (eval mode,
# no_grad), random uniform 1x28x28 inputs, labels i % 10, PyTorch's default init (which frugal's FR_INIT_DEFAULT
# reproduces). Prints the same "key value" line as bench_train so tools/compare_train.py parses both.
# -a NAME runs a torchvision classification model (e.g. resnet18, 3x224x224, 1000 classes) instead of s.
# Usage: /usr/bin/python3 bench_train_torch.py [-m train|infer|both] [-s seconds] [-a NAME] [-t threads | threads]
#        [batch...]
import resource
import sys
import time

import torch
import torch.nn as nn

args = sys.argv[1:]
mode, seconds, threads, arch = "train", 5.0, None, "s"
while len(args) >= 2 and args[0] in ("-m", "-s", "-t", "-a"):
    if args[0] == "-m":
        mode = args[1]
    elif args[0] == "-a":
        arch = args[1]
    elif args[0] == "-s":
        seconds = float(args[1])
    else:
        threads = int(args[1])
    args = args[2:]
if threads is None:
    threads = int(args.pop(0)) if args else 2
batches = [int(b) for b in args] or [64, 256]
torch.set_num_threads(threads)
torch.manual_seed(1)


def model_s():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))


def run(b, infer):
    if arch == "s":
        m, shape, k = model_s(), (1, 28, 28), 10
    else:
        import torchvision
        m, shape, k = getattr(torchvision.models, arch)(weights=None), (3, 224, 224), 1000
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(b, *shape)
    y = torch.arange(b) % k
    lossf = nn.CrossEntropyLoss()

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(m(x), y)
        loss.backward()
        opt.step()

    def infer_step():
        with torch.no_grad():
            m(x)

    if infer:
        m.eval()
    step = infer_step if infer else train_step
    for _ in range(3):
        step()
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        step()
        n += 1
        t = time.perf_counter() - t0
        if t >= seconds and n >= 5:
            break
    cpu = time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"impl pytorch-{torch.__version__} model {arch} mode {'infer' if infer else 'train'} batch {b} "
          f"threads {torch.get_num_threads()} images_per_s {n * b / t:.1f} steps {n} seconds {t:.2f} cpu_seconds {cpu:.2f} "
          f"peak_rss_kb {rss}", flush=True)


if mode not in ("train", "infer", "both"):
    sys.exit("bench_train_torch.py: -m must be train, infer or both")
for b in batches:
    if mode != "infer":
        run(b, False)
    if mode != "train":
        run(b, True)
