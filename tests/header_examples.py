#!/usr/bin/env python3
"""Compiles the example of every public header: the first block of lines indented by three or more spaces
(` *   code`) in the header's opening comment. Each example becomes the body of a function whose parameters are
the names examples may use without declaring them (see PRELUDE); the file is compiled with -Werror.
  header_examples.py CC... -- INCLUDE_DIR... -- HEADER...
"""
import os
import re
import subprocess
import sys
import tempfile

# names an example may use without declaring them (its inputs); an example may also declare its own
PRELUDE = """
    struct fr_backend *be, struct fr_backend *backend, struct fr_ctx *ctx, struct fr_graph *g, struct fr_optim *opt,
    struct fr_dataset *ds, struct fr_dataset *test, uint64_t seed, uint32_t step, int64_t epochs, int64_t steps, int N,
    struct fr_schedule sched, const float *images_f32, size_t bytes,
    struct fr_tensor *x, struct fr_tensor *w, struct fr_tensor *b, struct fr_tensor *y, struct fr_tensor *loss,
    struct fr_tensor *logits, struct fr_tensor *labels, struct fr_tensor *images, struct fr_tensor *prog_tensor,
    struct fr_tensor *fc_w, struct fr_tensor *fc_b, struct fr_tensor *bn_w, struct fr_tensor *bn_b,
    struct fr_tensor *bn_rm, struct fr_tensor *bn_rv, struct fr_tensor *const *params, int n_params,
    const uint8_t *images_u8, const int32_t *labels_i32, float *logits_out
"""


def example_of(path):
    text = open(path, encoding="utf-8").read()
    m = re.match(r"\s*/\*(.*?)\*/", text, re.S)
    if not m:
        return None
    lines, block = m.group(1).split("\n"), []
    for line in lines:
        code = re.match(r"^ \*   (.*)$", line)
        if code:
            block.append(code.group(1))
        elif block:
            break
    return "\n".join(block) if block else None


def main():
    args = sys.argv[1:]
    cut1 = args.index("--")
    cut2 = args.index("--", cut1 + 1)
    cc, incs, headers = args[:cut1], args[cut1 + 1:cut2], args[cut2 + 1:]
    src = ["#include <stdint.h>", "#include <stdio.h>", "#include <stdlib.h>", '#include "frugal/frugal.h"',
           "static void use(const void *p, ...) { (void)p; }"]
    n = 0
    for h in headers:
        body = example_of(h)
        if body is None:
            continue
        n += 1
        name = os.path.basename(h).replace(".", "_")
        src.append(f"/* {h} */\nvoid example_{name}({PRELUDE})\n{{\n    {{\n#line 1 \"{h} (example)\"\n{body}\n    }}\n}}")
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as f:
        f.write("\n".join(src) + "\n")
        path = f.name
    cmd = cc + ["-std=c11", "-D_GNU_SOURCE", "-fsyntax-only", "-Wall", "-Werror", "-Wno-unused-variable",
                "-Wno-unused-but-set-variable", "-Wno-unused-parameter", "-Wno-uninitialized",
                "-Wno-maybe-uninitialized"] + [f"-I{i}" for i in incs] + [path]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(f"{n} header examples compiled with {' '.join(cc)}")
    if r.returncode:
        print(r.stdout + r.stderr)
    os.unlink(path)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
