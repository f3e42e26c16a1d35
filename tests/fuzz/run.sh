#!/bin/sh
# Builds the libFuzzer targets with clang (library instrumented with -fsanitize=fuzzer-no-link,address) in a
# separate build directory and runs each target for N seconds (default 20) from its seed corpus.
#   tests/fuzz/run.sh [SECONDS] [TARGET...]        targets: idx safetensors csv image modelfile policy (default: all)
# Needs clang and libclang-rt-14-dev (Debian 12: apt-get install -y clang libclang-rt-14-dev).
# The build directory is build-fuzz in the source tree (FRUGAL_FUZZ_BUILD overrides it); new corpus entries and
# crash files go to its work/ folder, never into the tracked files. Exits non-zero when a target finds a crash.
set -eu
secs=${1:-20}
[ $# -gt 0 ] && shift
targets=${*:-idx safetensors csv image modelfile policy}
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${FRUGAL_FUZZ_BUILD:-$src/build-fuzz}
jobs=${FRUGAL_FUZZ_JOBS:-2}

# a build directory configured for another source tree is set up again for this one
if [ -f "$build/build.ninja" ] && ! grep -qF "\"source\": \"$src\"" "$build/meson-info/meson-info.json" 2>/dev/null; then
    rm -rf "$build"
fi
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$src" -Dfuzz=true -Dtests=false -Dtools=false -Dopencl=disabled \
        -Dbuildtype=debugoptimized -Db_sanitize=address -Db_lundef=false "-Dc_args=-fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
fi
ninja -C "$build" -j"$jobs" $(for t in $targets; do printf 'tests/fuzz/fuzz_%s ' "$t"; done)

status=0
for t in $targets; do
    work="$build/work/$t"
    mkdir -p "$work/corpus"
    echo "== fuzz_$t for ${secs}s"
    # first corpus dir receives new inputs; the seeds in the tree are read only
    if ! "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$work/" -print_final_stats=1 "$work/corpus" "$src/tests/fuzz/corpus/$t"; then
        echo "fuzz_$t: FAILED (reproducer in $work/)"
        status=1
    fi
done
exit $status
