#!/usr/bin/env python3
"""Writes the tiny seed corpus of the fuzz targets (tests/fuzz/corpus/<target>/), with the Python standard library
only: every file is laid out here byte by byte, independently of frugal's own writers. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
corpus/image/rgb.jpg is the one file not made here: a 4x4 JPEG written once with libstb's stbi_write_jpg."""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "wb") as f:
        f.write(data)


def idx(dims, payload):
    return bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


# --- idx: 2-byte little-endian split point (images | labels), 0 = images only ---
imgs = idx([2, 2, 3], range(12))
labs = idx([2], [1, 0])
put("idx", "pair.bin", struct.pack("<H", len(imgs)) + imgs + labs)
put("idx", "gz_images.bin", struct.pack("<H", 0) + gzip.compress(idx([1, 3, 3], range(9)), mtime=0))
put("idx", "rgb4d.bin", struct.pack("<H", 0) + idx([1, 2, 2, 3], range(12)))


# --- safetensors ---
def safetensors(tensors, meta=None):
    header = {}
    if meta:
        header["__metadata__"] = meta
    data, pos = b"", 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [pos, pos + len(raw)]}
        data += raw
        pos += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "f32_meta.safetensors",
    safetensors([("w", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), ("b", "I32", [2], struct.pack("<2i", -1, 5))],
                {"format": "pt", "epoch": "1"}))
put("safetensors", "mixed.safetensors",
    safetensors([("h", "F16", [2], struct.pack("<2H", 0x3C00, 0xC000)), ("bf", "BF16", [1], struct.pack("<H", 0x3F80)),
                 ("l", "I64", [], struct.pack("<q", 7)), ("u", "U8", [3], bytes([0, 1, 255])),
                 ("d", "F64", [1], struct.pack("<d", 0.5))]))
put("safetensors", "empty.safetensors", safetensors([]))

# --- csv ---
put("csv", "hard.csv", b"path,label\nimages/a.png,0\n\"images/b, c.png\",1\nimages/d.png,\n")
put("csv", "soft.csv", b"path,cat,dog\r\na.png,0.25,0.75\r\nb.png,1,0\r\n")


# --- image: 1 option byte (channels, size, resize mode), then the file ---
def png(w, h, color_type, rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def bmp(w, h, rgb_rows):
    stride = (w * 3 + 3) & ~3
    pix = b""
    for r in reversed(rgb_rows):  # bottom-up
        line = b"".join(bytes([r[3 * x + 2], r[3 * x + 1], r[3 * x]]) for x in range(w))
        pix += line + b"\0" * (stride - len(line))
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pix), 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + 40 + len(pix), 0, 0, 54) + info + pix


put("image", "grey.png", bytes([0x00]) + png(3, 2, 0, [[0, 128, 255], [10, 20, 30]]))
put("image", "rgb.png", bytes([0x0b]) + png(2, 2, 2, [[255, 0, 0, 0, 255, 0], [0, 0, 255, 9, 9, 9]]))
put("image", "rgba.png", bytes([0x91]) + png(1, 2, 6, [[1, 2, 3, 4], [5, 6, 7, 8]]))
put("image", "rgb.bmp", bytes([0x03]) + bmp(2, 2, [[255, 0, 0, 0, 255, 0], [0, 0, 255, 9, 9, 9]]))


# --- modelfile: 1 byte (channels, size, classes), then the text ---
put("modelfile", "cnn.txt", bytes([0x92]) + b"""# a small CNN
conv conv1 8 3 1 1
relu
maxpool 2 2
batchnorm bn1
flatten
linear head 32
dropout 0.5
linear fc 10
""")
put("modelfile", "resnet.txt", bytes([0x9a]) + b"""conv stem 16 3 1 1 nobias
batchnorm stem.bn
relu
residual block1
  conv block1.conv1 32 3 2 1 nobias
  batchnorm block1.bn1
  relu
  conv block1.conv2 32 3 1 1 nobias
  batchnorm block1.bn2
end 0.9
avgpool 2
gap
linear fc 5
""")

# --- policy: 2 bytes (input height, width), then the policy string ---
put("policy", "chain.txt", bytes([27, 27]) + b"rrc(size=24,scale=0.5);hflip(p=0.5);rotate(degrees=15)")
put("policy", "randaugment.txt", bytes([31, 15]) + b"randaugment(n=2,m=9);cutmix(alpha=1)")
put("policy", "geometry.txt", bytes([40, 40]) + b"perspective(distortion=0.3);shear(x=0.2);mixup(alpha=0.4);normalize(mean=0.5,std=0.25)")
put("policy", "pixels.txt", bytes([9, 60]) + b"crop(size=20);pad(amount=4);cutout(size=8);equalize;solarize(threshold=100)")
