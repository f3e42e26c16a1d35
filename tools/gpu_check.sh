#!/usr/bin/env bash
# GPU check in about 5 minutes: `frugal devices`, `devices --precompile`, the parity/grad/augment suites on
# the device (the test build when there is one, else their equivalents through the binary: bench items and a
# short training compared with the CPU path), `frugal bench --suite quick,ops,train --device all --json`, and
# a profiled training step. Every log, the JSON and summary.txt go to one folder: $OUT, else ./gpu-check-DATE.
#
#   tools/gpu_check.sh [--device cl:P:D] [--frugal PATH] [--build DIR]
#     --device  the device to check (default: the first GPU, else the first usable OpenCL device)
#     --frugal  the frugal to run (default: ./frugal next to this script in a bundle, else build/tools/frugal)
#     --build   a build tree whose tests/ has test_parity, test_grad, test_augment (default: build/ when present)
# Exit status: 0 when every step passed, 1 otherwise (summary.txt says which).
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
device="" frugal="" build=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --frugal) frugal="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$frugal" ]; then
  if [ -x "$here/frugal" ] && [ -f "$here/frugal.bin" ]; then frugal="$here/frugal" # in a bundle
  elif [ -x "$here/../build/tools/frugal" ]; then frugal="$here/../build/tools/frugal"
  else echo "gpu_check: no frugal found (--frugal PATH)" >&2; exit 2; fi
fi
[ -n "$build" ] || { [ -d "$here/../build/tests" ] && build="$here/../build"; }
out="${OUT:-$PWD/gpu-check-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out" || exit 2
# the source tree's kernels for a build tree; a bundle's launcher sets its own
[ -n "${FRUGAL_CL_PATH:-}" ] || { [ -d "$here/../cl" ] && export FRUGAL_CL_PATH="$(cd "$here/../cl" && pwd)"; }
# Fashion-MNIST for the trainings: FRUGAL_DATA, the Debian package's folder, or data/ in a bundle
have_data=""
for d in "${FRUGAL_DATA:-}" "${FRUGAL_DATA:-}/fashion-mnist" /usr/share/datasets/fashion-mnist "$here/data" \
         "$here/data/fashion-mnist"; do
  [ -n "$d" ] && ls "$d"/train-images-idx3-ubyte* >/dev/null 2>&1 && have_data=1
done
summary="$out/summary.txt"
: > "$summary"
failed=0
t_all=$(date +%s)

# step NAME SECONDS CMD...: runs CMD with a time limit, output in NAME.log, a line in the summary
step() {
  local name="$1" limit="$2"; shift 2
  local t0=$(date +%s) rc
  timeout --kill-after=10 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local verdict=ok
  [ $rc -eq 0 ] || { verdict="FAILED (exit $rc$([ $rc -eq 124 ] && echo ", over ${limit} s"))"; failed=1; }
  printf '%-28s %-28s %4d s\n' "$name" "$verdict" "$dt" | tee -a "$summary"
  return $rc
}
note() { echo "$*" | tee -a "$summary"; }

note "frugal GPU check, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(uname -srm), $("$frugal" --version 2>/dev/null || echo frugal)"
note "frugal: $frugal; output: $out"
step devices 60 "$frugal" devices
"$frugal" devices --json > "$out/devices.json" 2>/dev/null
if [ -z "$device" ]; then
  # the first usable GPU, else the first usable OpenCL device (devices --json: one key per line)
  device="$(awk -F'"' '/"spec":/ {spec=$4} /"type":/ {type=$4} /"usable":/ {
      if ($0 ~ /true/ && spec ~ /^cl:/) { if (type == "gpu" && !gpu) gpu=spec; if (!any) any=spec } }
      END {print gpu ? gpu : any}' "$out/devices.json")"
fi
if [ -z "$device" ]; then
  note "no usable OpenCL device: nothing more to check (devices.log says why)"
  exit 1
fi
dtype="$(awk -F'"' -v d="$device" '/"spec":/ {spec=$4} /"type":/ && spec == d {print $4; exit}' "$out/devices.json")"
note "device under test: $device ($dtype)"
sed -n "/^$device /,/usable:/p" "$out/devices.log" | tee -a "$summary"

step precompile 240 "$frugal" devices --precompile --device "$device"

if [ -n "$build" ] && [ -x "$build/tests/test_parity" ]; then
  note "parity, gradients, augmentation: the test build in $build (every usable OpenCL device it lists)"
  for t in parity grad augment; do
    [ -x "$build/tests/test_$t" ] && step "test_$t" 240 "$build/tests/test_$t"
  done
else
  # the same comparisons through the binary: each bench item's output against the CPU path (ops and
  # augmentation kernels, forward and backward), and a short training's losses against the CPU path's
  note "parity, gradients, augmentation: no test build here; bench items and a training compared with the CPU path"
  step parity_ops_augment 240 "$frugal" bench --suite quick,ops,augment --device "cpu,$device" --repeat 1 --seconds 0.02 \
    --json "$out/parity.json"
  if [ -n "$have_data" ]; then
    args=(train --data fmnist --labels 1000 --epochs 1 --model s --test-limit 1000 --seed 3 --json)
    step train_cpu 120 "$frugal" "${args[@]}" --device cpu
    step train_device 180 "$frugal" "${args[@]}" --device "$device"
    loss_cpu="$(grep -o '"test_loss":[^,]*' "$out/train_cpu.log" | cut -d: -f2)"
    loss_dev="$(grep -o '"test_loss":[^,]*' "$out/train_device.log" | cut -d: -f2)"
    if [ -n "$loss_cpu" ] && [ -n "$loss_dev" ] &&
       awk -v a="$loss_cpu" -v b="$loss_dev" 'BEGIN {d = a - b; if (d < 0) d = -d; exit !(d <= 1e-3 * (a < 0 ? -a : a) + 1e-4)}'; then
      note "training parity: test loss $loss_dev on $device, $loss_cpu on the CPU path (within 1e-3)"
    else
      note "training parity: FAILED (test loss '$loss_dev' on $device, '$loss_cpu' on the CPU path)"; failed=1
    fi
  else
    note "training parity: skipped (no Fashion-MNIST: set FRUGAL_DATA or put it in data/)"
  fi
fi

step bench 300 "$frugal" bench --suite quick,ops,train --device all --json "$out/bench.json"
if [ -n "$have_data" ]; then
  # a profiled training of model m (s on a CPU-type device such as PoCL, where m takes minutes per epoch)
  model=m
  [ "$dtype" = gpu ] || model=s
  step "profile_$model" 180 "$frugal" train --data fmnist --labels 200 --batch 32 --epochs 1 --model "$model" \
    --test-limit 32 --device "$device" --profile
fi
note "all steps: $(( $(date +%s) - t_all )) s; $([ $failed -eq 0 ] && echo 'every step passed' || echo 'some steps FAILED')"
exit $failed
