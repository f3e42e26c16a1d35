# PyTorch side of bench_train: training images/s of the reference CNN "s" (REFERENCE.md section 8) on the
# CPU, forward + cross-entropy + backward + SGD(momentum 0.9) step, random 1x28x28 inputs.
# Usage: /usr/bin/python3 bench_train_torch.py [threads] [batch...]
import sys, time
import torch
import torch.nn as nn

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
batches = [int(b) for b in sys.argv[2:]] or [64, 256]
torch.set_num_threads(threads)
torch.manual_seed(1)

def model_s():
    return nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(3136, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 10))

for b in batches:
    m = model_s()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(b, 1, 28, 28)
    y = torch.arange(b) % 10
    lossf = nn.CrossEntropyLoss()
    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(m(x), y)
        loss.backward()
        opt.step()
    for _ in range(3):
        step()
    n, t0 = 0, time.perf_counter()
    while True:
        step()
        n += 1
        t = time.perf_counter() - t0
        if t >= 5.0 and n >= 5:
            break
    print(f"pytorch {torch.__version__} model s batch {b:4d} threads {threads}: {n * b / t:8.1f} train images/s ({n} steps in {t:.2f} s)")
