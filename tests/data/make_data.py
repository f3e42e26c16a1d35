#!/usr/bin/env python3
"""Writes tests/data/torch_layout.safetensors with the byte layout of the reference `safetensors` serializer (the
one torch's save_file uses), using only the standard library (st_write.py): tensors ordered by dtype (descending, in the reference
Dtype enum order) then name, compact JSON with __metadata__ first, header padded with spaces to a multiple of 8.
test_safetensors reads it and checks that frugal's writer reproduces it byte for byte.
    python3 tests/data/make_data.py"""
import os
import struct

from st_write import write_safetensors

tensors = {
    "fc1.weight": ("F32", [2, 3], struct.pack("<6f", *[i * 0.5 - 1 for i in range(6)])),
    "fc1.bias": ("F32", [2], struct.pack("<2f", 0.25, -4.0)),
    "bn.num_batches_tracked": ("I64", [], struct.pack("<q", 100)),
    "emb": ("F16", [2], struct.pack("<2H", 0x3C00, 0xB800)),  # 1.0, -0.5
}
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_layout.safetensors")
print(out, write_safetensors(out, tensors))
