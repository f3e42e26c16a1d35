#!/usr/bin/env bash
# Builds frugal-<version>-linux-<arch>.tar.gz, a relocatable bundle for lab machines without root or network:
# the frugal binary (CLBlast, inih, zlib and libstdc++ linked in; RUNPATH $ORIGIN/lib), the shared
# libraries it still needs (the OpenCL ICD loader, cJSON), the kernel sources, a launcher that finds vendor
# OpenCL drivers when no /etc/OpenCL/vendors/*.icd exists, and tools/gpu_check.sh.
#
#   tools/bundle.sh [OUTDIR]        (default dist/; the build goes to build-bundle/, BUILD= to change it)
#   tar xzf dist/frugal-*.tar.gz && frugal-*/frugal devices
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
build="${BUILD:-$root/build-bundle}"
cd "$root"

version="$(sed -n "s/^ *version : '\([^']*\)',*$/\1/p" meson.build | head -1)"
arch="$(uname -m)"
name="frugal-$version-linux-$arch"
[ -n "$version" ] || { echo "bundle: no version in meson.build" >&2; exit 1; }

# a release build of the library and the CLI without tests, not tuned to this CPU (-Dnative=false); without MPI
# (-Dmpi=disabled): the bundle runs where Open MPI is not installed (jobs over MPI use a build from source)
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure -Dmpi=disabled "$build" >/dev/null
else
  meson setup "$build" --buildtype=release -Dtests=false -Dnative=false -Dopencl=enabled -Dmpi=disabled >/dev/null
fi
ninja -C "$build" tools/frugal >/dev/null

# Static archives for everything but glibc, the ICD loader (it must be the machine's or ours, found at run
# time) and cJSON (Debian ships no libcjson.a).
static_lib() { local p; p="$(gcc -print-file-name="$1")"; [ "$p" != "$1" ] && [ -f "$p" ] && echo "$p"; }
clblast_a="$(static_lib libclblast.a || true)"
inih_a="$(static_lib libinih.a || true)"
z_a="$(static_lib libz.a || true)"
turbojpeg_a="$(static_lib libturbojpeg.a || true)"
libs=()
shared_extra=()
if grep -q "FRUGAL_HAVE_CLBLAST 1" "$build/frugal_config.h"; then
  if [ -n "$clblast_a" ]; then
    libs+=("$clblast_a")
  else
    # no libclblast.a (a distribution without it): the shared library and its C++ runtime go into lib/
    echo "bundle: no libclblast.a (Debian/Ubuntu: apt-get install libclblast-dev); bundling libclblast.so.1 instead" >&2
    libs+=(-lclblast)
    shared_extra+=(libclblast.so.1 libstdc++.so.6 libgcc_s.so.1)
  fi
fi
if grep -q "FRUGAL_HAVE_TURBOJPEG 1" "$build/frugal_config.h"; then
  libs+=("${turbojpeg_a:--lturbojpeg}") # libjpeg-turbo for JPEG datasets (shared: copied into lib/ below)
fi
libs+=("${inih_a:--linih}" "${z_a:--lz}" -lOpenCL -lcjson -lm -lpthread)

stage="$(mktemp -d "${TMPDIR:-/tmp}/frugal-bundle-XXXXXX")"
trap 'rm -rf "$stage"' EXIT
dir="$stage/$name"
mkdir -p "$dir/lib" "$dir/cl"

# g++ as the linker driver: CLBlast is C++; libstdc++ is linked in. libgcc_s stays the machine's own (its
# unwinder must match the machine's glibc), and arc4random comes from tools/bundle_compat.c: both keep the
# glibc the bundle needs at 2.34 rather than the build machine's.
gcc -c -O2 -o "$stage/bundle_compat.o" tools/bundle_compat.c
g++ -o "$dir/frugal.bin" "$build"/tools/frugal.p/*.o "$stage/bundle_compat.o" "$build/libfrugal.a" "${libs[@]}" \
  -static-libstdc++ -Wl,--as-needed -Wl,-rpath,'$ORIGIN/lib' -Wl,--enable-new-dtags
strip --strip-unneeded "$dir/frugal.bin"

# the shared libraries it still needs, except glibc's own and libgcc_s (every Linux has them, and they must
# match the machine's loader)
glibc='^(libc|libm|libpthread|libdl|librt|ld-linux[-a-z0-9_]*|libresolv|libgcc_s)\.so'
needed="$(objdump -p "$dir/frugal.bin" | awk '/NEEDED/ {print $2}')"
for so in $needed "${shared_extra[@]}"; do
  [[ "$so" =~ $glibc ]] && continue
  path="$(gcc -print-file-name="$so")"
  [ -f "$path" ] || path="$(ldconfig -p 2>/dev/null | awk -v n="$so" '$1 == n {print $NF; exit}')"
  [ -f "$path" ] || { echo "bundle: cannot find $so to bundle" >&2; exit 1; }
  cp -L "$path" "$dir/lib/$so"
done

cp cl/*.cl cl/*.h "$dir/cl/"
cp tools/gpu_check.sh "$dir/gpu_check.sh"

cat > "$dir/frugal" <<'LAUNCHER'
#!/bin/sh
# frugal bundle launcher: runs frugal.bin with the bundle's kernel sources and libraries. When the machine has
# no /etc/OpenCL/vendors/*.icd (containers, no root), it looks for the vendor OpenCL drivers in their usual
# places (NVIDIA libnvidia-opencl.so.1, AMD libamdocl64.so, Intel libigdrcl.so, PoCL libpocl.so.2; others in
# FRUGAL_OPENCL_DRIVERS=path:path) and hands them to the ICD loader through OCL_ICD_VENDORS.
# FRUGAL_LAUNCHER_DEBUG=1 prints what it chose.
here=$(cd "$(dirname "$0")" && pwd -P)
[ -n "$PATH" ] || PATH=/usr/local/bin:/usr/bin:/bin # PoCL links kernels with ld
export PATH
[ -n "$FRUGAL_CL_PATH" ] || FRUGAL_CL_PATH=$here/cl
export FRUGAL_CL_PATH
if [ -z "$FRUGAL_CACHE_DIR" ] && [ -z "$XDG_CACHE_HOME" ] && [ -z "$HOME" ]; then
  # no home (env -i, batch jobs): compiled kernels are cached in the bundle when it is writable
  if mkdir -p "$here/cache" 2>/dev/null && [ -w "$here/cache" ]; then FRUGAL_CACHE_DIR=$here/cache; export FRUGAL_CACHE_DIR; fi
fi
if [ -z "$FRUGAL_DATA" ] && [ -d "$here/data" ]; then FRUGAL_DATA=$here/data; export FRUGAL_DATA; fi

say() { [ -z "$FRUGAL_LAUNCHER_DEBUG" ] || echo "frugal launcher: $*" >&2; }
vendors=${FRUGAL_VENDORS_DIR:-/etc/OpenCL/vendors} # the system's ICD directory (a test can point it elsewhere)
has_icd=
for f in "$vendors"/*.icd; do [ -e "$f" ] && has_icd=1; done
if [ -n "$OCL_ICD_VENDORS$OPENCL_VENDOR_PATH" ]; then
  say "OCL_ICD_VENDORS/OPENCL_VENDOR_PATH set: left as they are"
elif [ -n "$has_icd" ]; then
  say "using the ICD files in $vendors"
else
  m=$(uname -m)
  found=
  add() {
    for lib in "$@"; do
      [ -f "$lib" ] || continue
      real=$(readlink -f "$lib" 2>/dev/null || echo "$lib")
      case " $found " in *" $real "*) ;; *) found="$found $real" ;; esac
    done
  }
  old_ifs=$IFS; IFS=:; set -f
  for lib in $FRUGAL_OPENCL_DRIVERS; do add "$lib"; done
  IFS=$old_ifs; set +f
  for d in /usr/lib/$m-linux-gnu /usr/lib64 /usr/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib \
           /run/nvidia/driver/usr/lib/$m-linux-gnu /usr/lib/$m-linux-gnu/nvidia/current; do
    add "$d/libnvidia-opencl.so.1"
  done
  for d in /opt/rocm/lib /opt/rocm/opencl/lib /opt/rocm-*/lib /opt/rocm-*/opencl/lib /usr/lib/$m-linux-gnu /usr/lib64; do
    add "$d/libamdocl64.so"
  done
  for d in /usr/lib/$m-linux-gnu/intel-opencl /usr/lib64/intel-opencl /usr/local/lib/intel-opencl /opt/intel/opencl; do
    add "$d/libigdrcl.so"
  done
  for d in /usr/lib/$m-linux-gnu /usr/lib64 /usr/local/lib /usr/local/lib64; do add "$d/libpocl.so.2"; done
  for ld in ldconfig /sbin/ldconfig /usr/sbin/ldconfig; do
    if command -v "$ld" >/dev/null 2>&1; then
      add $("$ld" -p 2>/dev/null | awk '/libnvidia-opencl\.so\.1 |libamdocl64\.so |libigdrcl\.so / {print $NF}')
      break
    fi
  done
  n=0
  for lib in $found; do n=$((n + 1)); first=$lib; done
  if [ "$n" = 1 ]; then
    OCL_ICD_VENDORS=$first
  elif [ "$n" -gt 1 ]; then
    # several drivers: an ICD directory of our own, one file per driver
    dir=$here/vendors
    { mkdir -p "$dir" && [ -w "$dir" ]; } 2>/dev/null || dir=${TMPDIR:-/tmp}/frugal-vendors-$(id -u)
    mkdir -p "$dir" && rm -f "$dir"/*.icd
    i=0
    for lib in $found; do i=$((i + 1)); echo "$lib" > "$dir/$i-$(basename "$lib").icd"; done
    OCL_ICD_VENDORS=$dir
  fi
  if [ -n "$OCL_ICD_VENDORS" ]; then
    export OCL_ICD_VENDORS
    say "no ICD files in $vendors; OpenCL drivers found:$found"
  else
    say "no ICD files in $vendors and no OpenCL driver found: CPU path only"
  fi
fi
exec "$here/frugal.bin" "$@"
LAUNCHER
chmod +x "$dir/frugal" "$dir/gpu_check.sh"

glibc_need="$(objdump -T "$dir/frugal.bin" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)"
cat > "$dir/README.txt" <<EOF
frugal $version for Linux $arch: a bundle that runs without installing anything.

  ./frugal devices                      the CPU path and every OpenCL device found
  ./frugal train --data fmnist ...      see ./frugal --help; put datasets in data/ or set FRUGAL_DATA
  ./gpu_check.sh                        a ~5 minute check of a GPU (logs and JSON in \$OUT or ./gpu-check-*)

Needs glibc ${glibc_need#GLIBC_} or newer and a GPU driver with OpenCL (NVIDIA, AMD ROCm, Intel compute
runtime) or PoCL. When the machine has no /etc/OpenCL/vendors/*.icd (containers), ./frugal looks for the
drivers in the usual places; FRUGAL_LAUNCHER_DEBUG=1 shows what it found, FRUGAL_OPENCL_DRIVERS=/path/lib.so
adds one. Contents: frugal (launcher), frugal.bin (CLBlast and the C++ runtime linked in, RUNPATH lib/),
lib/ ($(cd "$dir/lib" && echo *)), cl/ (kernel sources, compiled at run time and cached).
EOF

tarball="$out/$name.tar.gz"
tar -C "$stage" -czf "$tarball" "$name"
echo "bundle: $tarball ($(du -h "$tarball" | cut -f1); binary $(du -h "$dir/frugal.bin" | cut -f1), needs $glibc_need)"
echo "bundle: frugal.bin needs $(echo $needed | tr ' ' ','); bundled lib/: $(cd "$dir/lib" && echo *)"
