#!/usr/bin/python3
"""Exports torchvision classification backbones for frugal: DIR/NAME.txt (a frugal model file with
torchvision's state_dict names) + DIR/NAME.safetensors (the weights, with the ImageNet class names and input
normalisation in the metadata).

  /usr/bin/python3 tools/export_torchvision.py resnet18 --out models/                  # random initialisation
  /usr/bin/python3 tools/export_torchvision.py resnet18 --weights resnet18.pth --out models/
  frugal finetune --from models/resnet18.safetensors --arch models/resnet18.txt --data folder:photos ...

Nothing is downloaded: without --weights the network is torchvision's random initialisation (seed --seed).
--weights takes a state_dict saved by torch.save (.pth/.pt) or a .safetensors file.
--reference N also writes DIR/NAME.ref.safetensors: N random images in [0,1] ("input", [N,3,H,W], before
normalisation) and torchvision's eval-mode logits for them ("logits"); --perturb-bn first replaces every
batch-norm's statistics and affine parameters by random ones, so a parity check exercises them.
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import SqueezeExcitation

MODELS = ["resnet18", "resnet34", "resnet50", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
          "efficientnet_b0"]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class Unsupported(Exception):
    pass


ACTS = {nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid",
        nn.SiLU: "silu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.GELU: "gelu"}


def act_name(m):
    if isinstance(m, type):
        cls = m
    else:
        cls = type(m)
    for k, v in ACTS.items():
        if cls is k:
            return v
    raise Unsupported(f"activation {cls.__name__}")


def square(v, what, name):
    if isinstance(v, (tuple, list)):
        if len(set(v)) != 1:
            raise Unsupported(f"{name}: non-square {what} {v}")
        return v[0]
    return v


class Writer:
    def __init__(self):
        self.lines = []
        self.depth = 0

    def add(self, line):
        self.lines.append("  " * self.depth + line)

    def conv(self, name, m):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise Unsupported(f"{name}: padding {m.padding!r} / {m.padding_mode}")
        k = square(m.kernel_size, "kernel", name)
        s = square(m.stride, "stride", name)
        p = square(m.padding, "padding", name)
        d = square(m.dilation, "dilation", name)
        line = f"conv {name} {m.out_channels} {k} {s} {p}"
        if m.bias is None:
            line += " nobias"
        if m.groups != 1:
            line += f" groups={m.groups}"
        if d != 1:
            line += f" dilation={d}"
        self.add(line)

    def bn(self, name, m):
        line = f"batchnorm {name}"
        if m.eps != 1e-5:
            line += f" eps={m.eps:g}"
        if m.momentum is not None and m.momentum != 0.1:
            line += f" momentum={m.momentum:g}"
        self.add(line)

    def module(self, name, m):
        """One module (and its children) as model-file lines; residual blocks by type."""
        tv = torchvision.models
        if isinstance(m, nn.Conv2d):
            self.conv(name, m)
        elif isinstance(m, nn.BatchNorm2d):
            self.bn(name, m)
        elif type(m) in ACTS:
            self.add(act_name(m))
        elif isinstance(m, nn.MaxPool2d):
            if square(m.dilation, "dilation", name) != 1:
                raise Unsupported(f"{name}: dilated max-pool")
            k, s, p = (square(v, w, name) for v, w in ((m.kernel_size, "kernel"), (m.stride, "stride"),
                                                        (m.padding, "padding")))
            self.add(f"maxpool {k} {s} {p}" + (" ceil" if m.ceil_mode else ""))
        elif isinstance(m, nn.AvgPool2d):
            k, s, p = (square(v, w, name) for v, w in ((m.kernel_size, "kernel"), (m.stride, "stride"),
                                                        (m.padding, "padding")))
            self.add(f"avgpool {k} {s} {p}" + (" ceil" if m.ceil_mode else "") +
                     ("" if m.count_include_pad else " exclude_pad"))
        elif isinstance(m, nn.Linear):
            self.add(f"linear {name} {m.out_features}")
        elif isinstance(m, nn.Dropout):
            if m.p > 0:
                self.add(f"dropout {m.p:g}")
        elif isinstance(m, nn.Identity):
            pass
        elif isinstance(m, SqueezeExcitation):
            self.add(f"se {name} {m.fc1.out_channels} {act_name(m.activation)} {act_name(m.scale_activation)}")
        elif isinstance(m, (tv.resnet.BasicBlock, tv.resnet.Bottleneck)):
            self.add(f"residual {name}")
            self.depth += 1
            convs = ["conv1", "conv2"] + (["conv3"] if hasattr(m, "conv3") else [])
            for i, c in enumerate(convs):
                self.module(f"{name}.{c}", getattr(m, c))
                self.module(f"{name}.bn{i + 1}", getattr(m, f"bn{i + 1}"))
                if i + 1 < len(convs):
                    self.add("relu")
            self.depth -= 1
            self.add("end")  # a shape change makes frugal's projection <name>.downsample.{0,1}, as torchvision's
            self.add("relu")
            if m.downsample is not None:
                c, b = m.downsample[0], m.downsample[1]
                if c.kernel_size != (1, 1) or b.eps != 1e-5:
                    raise Unsupported(f"{name}.downsample: not a 1x1 conv + default batch-norm")
        elif isinstance(m, (tv.mobilenetv2.InvertedResidual, tv.mobilenetv3.InvertedResidual,
                            tv.efficientnet.MBConv)):
            body = "conv" if isinstance(m, tv.mobilenetv2.InvertedResidual) else "block"
            res = m.use_res_connect
            if res:
                self.add(f"residual {name}")
                self.depth += 1
            self.module(f"{name}.{body}", getattr(m, body))
            if res:
                self.depth -= 1
                sd = getattr(m, "stochastic_depth", None)
                self.add("end" + (f" {1.0 - sd.p:.6g}" if sd is not None and sd.p > 0 else ""))
        elif isinstance(m, nn.Sequential):
            for cname, c in m.named_children():
                self.module(f"{name}.{cname}" if name else cname, c)
        else:
            raise Unsupported(f"{name}: {type(m).__name__} has no frugal layer")


def model_text(arch, model, n_classes, size):
    w = Writer()
    w.add(f"# torchvision {arch} ({torchvision.__version__}), written by tools/export_torchvision.py; "
          f"input 3x{size}x{size}")
    w.add("normalize " + " ".join(f"{v:g}" for v in MEAN + STD))
    if arch.startswith("resnet"):
        for name in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]:
            w.module(name, getattr(model, name))
        w.add("gap")
        w.add(f"linear fc {n_classes}")
    else:
        w.module("features", model.features)
        w.add("gap")
        w.module("classifier", model.classifier)
    return "\n".join(w.lines) + "\n"


# ---- safetensors (the format is small: an 8-byte header length, a JSON header, the raw data) ----
ST_DTYPES = {np.dtype("float32"): "F32", np.dtype("int64"): "I64", np.dtype("float64"): "F64",
             np.dtype("int32"): "I32", np.dtype("float16"): "F16", np.dtype("uint8"): "U8"}
NP_DTYPES = {v: k for k, v in ST_DTYPES.items()}


def save_safetensors(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = np.ascontiguousarray(t)
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": ST_DTYPES[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    base, out = 8 + n, {}
    for name, e in header.items():
        if e["dtype"] == "BF16":
            raw = np.frombuffer(data[base + e["data_offsets"][0]:base + e["data_offsets"][1]], dtype="<u2")
            a = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(data[base + e["data_offsets"][0]:base + e["data_offsets"][1]],
                              dtype=NP_DTYPES[e["dtype"]].newbyteorder("<"))
        out[name] = torch.from_numpy(a.reshape(e["shape"]).copy())
    return out


def imagenet_categories():
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
        return list(_IMAGENET_CATEGORIES)
    except ImportError:
        return [str(i) for i in range(1000)]


def perturb_bn(model, gen, size):
    """Random batch-norm affine parameters, running statistics measured on random images (so activations keep
    a realistic scale through the depth) and then perturbed: eval-mode parity exercises all four tensors."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            c = m.num_features
            m.weight.copy_(1.0 + 0.2 * torch.randn(c, generator=gen))
            m.bias.copy_(0.1 * torch.randn(c, generator=gen))
            m.reset_running_stats()
            m.momentum, m.saved_momentum = None, m.momentum  # cumulative average over the calibration batch
        model.train()
        model(torch.randn(8, 3, size, size, generator=gen))
        model.eval()
        for m in bns:
            c = m.num_features
            m.momentum = m.saved_momentum
            del m.saved_momentum
            m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(c, generator=gen))
            m.running_var.mul_(0.8 + 0.45 * torch.rand(c, generator=gen))


def export(arch, args):
    torch.manual_seed(args.seed)
    model = getattr(torchvision.models, arch)(weights=None)
    if args.weights:
        sd = (load_safetensors(args.weights) if args.weights.endswith(".safetensors")
              else torch.load(args.weights, map_location="cpu"))
        if isinstance(sd, dict) and "state_dict" in sd:
            sd = sd["state_dict"]
        model.load_state_dict(sd)
    if args.perturb_bn:
        perturb_bn(model, torch.Generator().manual_seed(args.seed + 1), args.size)
    model.eval()
    sd = model.state_dict()
    n_classes = sd["fc.bias" if arch.startswith("resnet") else
                   [k for k in sd if k.startswith("classifier.") and k.endswith(".bias")][-1]].shape[0]
    text = model_text(arch, model, n_classes, args.size)
    classes = imagenet_categories() if n_classes == 1000 else [str(i) for i in range(n_classes)]
    meta = {"format": "pt", "frugal.source": f"torchvision {torchvision.__version__} {arch}" +
            (f" weights {args.weights}" if args.weights else f" random init seed {args.seed}"),
            "frugal.input": f"3,{args.size},{args.size}", "frugal.class_names": json.dumps(classes),
            "frugal.normalize": "mean=" + ",".join(f"{v:g}" for v in MEAN + [0]) + ";std=" +
            ",".join(f"{v:g}" for v in STD + [1])}
    tensors = {k: v.detach().cpu().numpy() for k, v in sd.items()}
    os.makedirs(args.out, exist_ok=True)
    with open(f"{args.out}/{arch}.txt", "w") as f:
        f.write(text)
    save_safetensors(f"{args.out}/{arch}.safetensors", tensors, meta)
    if args.reference:
        gen = torch.Generator().manual_seed(args.seed + 2)
        x = torch.rand(args.reference, 3, args.size, args.size, generator=gen)
        xn = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        with torch.no_grad():
            logits = model(xn)
        save_safetensors(f"{args.out}/{arch}.ref.safetensors",
                         {"input": x.numpy(), "logits": logits.numpy().astype(np.float32)},
                         {"frugal.source": meta["frugal.source"]})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="+", metavar="NAME", help="one or more of: " + ", ".join(MODELS))
    ap.add_argument("--weights", help="a state_dict (.pth/.pt) or .safetensors file (one NAME only)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--size", type=int, default=224, help="input size written in the model file (224)")
    ap.add_argument("--seed", type=int, default=0, help="random initialisation seed (0)")
    ap.add_argument("--perturb-bn", action="store_true", help="random batch-norm parameters and statistics (tests)")
    ap.add_argument("--reference", type=int, default=0, metavar="N", help="also write N images and their logits")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for n in args.names:
        if n not in MODELS and not hasattr(torchvision.models, n):
            print(f"export_torchvision.py: unknown model '{n}' (known: {', '.join(MODELS)})", file=sys.stderr)
            return 2
    if args.weights and len(args.names) != 1:
        print("export_torchvision.py: --weights takes exactly one NAME", file=sys.stderr)
        return 2
    for n in args.names:
        try:
            export(n, args)
        except Unsupported as e:
            print(f"export_torchvision.py: {n}: {e}", file=sys.stderr)
            return 1
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            print(f"export_torchvision.py: {n}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
