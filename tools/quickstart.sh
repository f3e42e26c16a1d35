#!/usr/bin/env bash
# One-command set-up for Debian/Ubuntu: installs missing packages, builds into build/, then runs the
# main job (`tools/quickstart.sh`, the Fashion-MNIST demo) or the test suites (`tools/quickstart.sh test`).
set -euo pipefail

mode="${1:-demo}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

packages=(build-essential pkg-config meson ninja-build python3 ocl-icd-opencl-dev opencl-headers libclblast-dev
          libstb-dev libcmocka-dev pocl-opencl-icd clinfo zlib1g-dev libcjson-dev libinih-dev libturbojpeg0-dev
          libopenmpi-dev openmpi-bin dataset-fashion-mnist)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "quickstart: installing ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "quickstart: these packages are missing and I can neither run apt-get as root nor use sudo:" >&2
    echo "  ${missing[*]}" >&2
    echo "install them (apt-get install ${missing[*]}) and run me again" >&2
    exit 1
  fi
fi

build="${FRUGAL_BUILD_DIR:-build}"
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" --buildtype=release
fi
ninja -C "$build"

case "$mode" in
  test)
    rc=0
    meson test -C "$build" --print-errorlogs --num-processes 2 "$@" || rc=$?
    "$root/tools/count_tests.sh" "$build/meson-logs/testlog.txt"
    exit $rc
    ;;
  demo|"")
    if "$build/tools/frugal" --help | grep -q '^  demo '; then
      exec "$build/tools/frugal" demo "$@"
    fi
    echo "quickstart: the demo command is not built yet; showing the devices frugal can use"
    exec "$build/tools/frugal" devices "$@"
    ;;
  *)
    echo "usage: tools/quickstart.sh [demo|test] [extra flags]" >&2
    exit 2
    ;;
esac
