#!/usr/bin/env python3
"""Writes tests/data/torch_layout.safetensors with the byte layout of the reference `safetensors` serializer (the
one torch's save_file uses), using only the standard library: tensors ordered by dtype (descending, in the reference
Dtype enum order) then name, compact JSON with __metadata__ first, header padded with spaces to a multiple of 8.
test_safetensors reads it and checks that frugal's writer reproduces it byte for byte.
    python3 tests/data/make_data.py"""
import json
import os
import struct

# reference Dtype enum order (safetensors/src/tensor.rs)
ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]

tensors = {
    "fc1.weight": ("F32", [2, 3], struct.pack("<6f", *[i * 0.5 - 1 for i in range(6)])),
    "fc1.bias": ("F32", [2], struct.pack("<2f", 0.25, -4.0)),
    "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 100)),
    "emb": ("F16", [2], struct.pack("<2H", 0x3C00, 0xB800)),  # 1.0, -0.5
}
names = sorted(tensors, key=lambda n: (-ORDER.index(tensors[n][0]), n))
header = {"__metadata__": {"format": "pt"}}
data, pos = b"", 0
for n in names:
    dtype, shape, raw = tensors[n]
    header[n] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + len(raw)]}
    data += raw
    pos += len(raw)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_layout.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
print(out, names)
