"""safetensors writer shared by the tests/data generators, standard library only, with the byte layout of the
reference serializer (the one torch's save_file uses): tensors ordered by dtype (descending, in the reference
Dtype enum order) then name, compact JSON with __metadata__ first, header padded with spaces to a multiple of 8."""
import json
import struct

# reference Dtype enum order (safetensors/src/tensor.rs)
ORDER = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"]


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, raw little-endian bytes)}; returns the names in file order."""
    names = sorted(tensors, key=lambda n: (-ORDER.index(tensors[n][0]), n))
    header = {"__metadata__": metadata if metadata is not None else {"format": "pt"}}
    chunks, pos = [], 0
    for n in names:
        dtype, shape, raw = tensors[n]
        header[n] = {"dtype": dtype, "shape": list(shape), "data_offsets": [pos, pos + len(raw)]}
        chunks.append(raw)
        pos += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))
    return names
