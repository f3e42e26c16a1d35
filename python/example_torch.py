"""A PyTorch training loop on Fashion-MNIST fed by frugal: RandAugment, CutMix and normalisation in one frugal call
per batch, in the DataLoader's worker processes; soft CutMix targets go straight into cross_entropy."""
import torch
import torch.nn as nn
import torch.nn.functional as F

import frugal
from frugal.torch import Collate

train, test = frugal.load_dataset("fmnist"), frugal.load_dataset("fmnist:test")  # uint8 [N, 28, 28, 1] + labels
collate = Collate("randaugment(n=2,m=9);cutmix(alpha=1);normalize(mean=0.286,std=0.353)", n_classes=10, seed=1)
loader = torch.utils.data.DataLoader(list(zip(train.images, train.labels)), batch_size=64, shuffle=True,
                                     num_workers=2, collate_fn=collate)
model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                      nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 7 * 7, 10))
opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
for epoch in range(3):
    collate.set_epoch(epoch)  # new augmentations every epoch, reproducible from the seed
    model.train()
    for images, targets in loader:  # float32 [64, 1, 28, 28] normalised, soft targets float32 [64, 10]
        loss = F.cross_entropy(model(images), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = (torch.from_numpy(test.images).permute(0, 3, 1, 2).float() / 255 - 0.286) / 0.353
    with torch.no_grad():
        accuracy = (model.eval()(x).argmax(1).numpy() == test.labels).mean()
    print(f"epoch {epoch}: train loss {loss.item():.3f}, test accuracy {accuracy:.4f}")
