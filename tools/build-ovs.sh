#!/usr/bin/env bash
# Builds ovs-vswitchd-gl: Open vSwitch's own ovs-vswitchd with the Goldilocks datapath
# provider (datapath type "gl", dataplane/ovs/) linked in.
#
# Usage: tools/build-ovs.sh BUILD_DIR
#   BUILD_DIR is the CMake build tree of Goldilocks (libgl_dpapi.a & co must be built).
#   Output: BUILD_DIR/ovs/ovs-vswitchd-gl. Work areas: BUILD_DIR/ovs/src (the unpacked
#   source), BUILD_DIR/ovs/build (OVS's out-of-tree build), BUILD_DIR/ovs/gl (our objects).
#
# The OVS source is Debian's openvswitch-source (/usr/src/openvswitch/openvswitch.tar.gz,
# override with OVS_TARBALL); its version must be 3.1.x. Nothing in it is modified: the
# provider registers itself from a constructor. OVS is configured WITHOUT DPDK (see
# dataplane/ovs/README.md: gldp owns the NICs; "type=dpdk" ports belong to our netdev
# class). Every step is skipped when already done; compiles go through ccache.
# Environment: GL_JOBS (make parallelism, default 2, capped at 2), OVS_TARBALL.
set -euo pipefail

die() { echo "build-ovs.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: tools/build-ovs.sh BUILD_DIR"
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(mkdir -p "$1" && cd "$1" && pwd)
tarball=${OVS_TARBALL:-/usr/src/openvswitch/openvswitch.tar.gz}
jobs=${GL_JOBS:-2}
[ "$jobs" -gt 2 ] && jobs=2
want_series="3.1"

ovs=$build/ovs
src=$ovs/src
obj=$ovs/build
glo=$ovs/gl
mkdir -p "$ovs" "$glo"

[ -f "$tarball" ] || die "$tarball not found: install Debian's openvswitch-source (tools/setup.sh)"

# ---- 1. unpack (again when the tarball changed) --------------------------------------
stamp=$ovs/.unpacked
if [ ! -f "$stamp" ] || [ "$tarball" -nt "$stamp" ]; then
  echo "build-ovs: unpacking $tarball"
  rm -rf "$src" "$obj"
  mkdir -p "$src"
  tar -xzf "$tarball" -C "$src" --strip-components=1
  touch "$stamp"
fi

# ---- 2. version pin ------------------------------------------------------------------
version=$(sed -n 's/^AC_INIT(openvswitch, *\([0-9.]*\),.*/\1/p' "$src/configure.ac")
case "$version" in
  "$want_series".*) ;;
  *) die "OVS source is version '${version:-unknown}', this provider is written for $want_series.x (dpif_class layout); install openvswitch-source $want_series" ;;
esac

# ---- 3. configure (out of tree, no DPDK) -----------------------------------------------
cc="gcc"
command -v ccache >/dev/null 2>&1 && cc="ccache gcc"
if [ ! -f "$obj/config.status" ] || [ "$src/configure" -nt "$obj/config.status" ]; then
  echo "build-ovs: configuring OVS $version in $obj"
  mkdir -p "$obj"
  (cd "$obj" && "$src/configure" CC="$cc" CFLAGS="-g -O2 -march=corei7" \
      --prefix=/usr --localstatedir=/var --sysconfdir=/etc \
      --without-dpdk --disable-shared --enable-static >"$obj/configure.log" 2>&1) ||
    { tail -30 "$obj/configure.log" >&2; die "OVS configure failed (log: $obj/configure.log)"; }
fi

# ---- 4. OVS libraries and vswitchd objects --------------------------------------------
ovs_targets=(lib/libopenvswitch.la lib/libsflow.la ofproto/libofproto.la
             vswitchd/bridge.o vswitchd/ovs-vswitchd.o vswitchd/system-stats.o)
if grep -q '^lib_libopenvswitchavx512_la' "$obj/Makefile"; then
  ovs_targets+=(lib/libopenvswitchavx512.la)
fi
echo "build-ovs: make ${ovs_targets[*]} (-j$jobs)"
# Generated headers (odp-netlink.h, meta-flow.inc, ...) are automake BUILT_SOURCES, which
# only "make all" builds by itself: name them first.
{ make -C "$obj" -j"$jobs" -f Makefile -f <(printf 'gl-built-sources: $(BUILT_SOURCES)\n') \
      gl-built-sources && make -C "$obj" -j"$jobs" "${ovs_targets[@]}"; } >"$obj/make.log" 2>&1 ||
  { tail -40 "$obj/make.log" >&2; die "OVS build failed (log: $obj/make.log)"; }

# ---- 5. our provider, compiled against OVS's headers ----------------------------------
gl_libs=("$build/dataplane/api/libgl_dpapi.a" "$build/dataplane/api/libgl_odp.a"
         "$build/flowtables/libgl_flowtables.a")
for l in "${gl_libs[@]}"; do
  [ -f "$l" ] || die "$l missing: build Goldilocks first (ninja -C $build gl_dpapi)"
done
cflags=(-std=gnu11 -g -O2 -march=corei7 -fno-omit-frame-pointer -Wall -Wextra
        -Wno-sign-compare -Wno-unused-parameter -Wno-missing-field-initializers
        -Wstrict-prototypes -Wold-style-definition ${GL_OVS_WERROR:+-Werror}
        -I"$obj" -I"$obj/include" -I"$obj/lib" -I"$src/include" -I"$src/lib" -I"$src"
        -I"$top")
provider_objs=()
newest_header=$(ls -t "$top"/dataplane/ovs/*.h "$top"/dataplane/api/gl_dpapi.h 2>/dev/null | head -1)
for c in "$top"/dataplane/ovs/*.c; do
  o=$glo/$(basename "${c%.c}").o
  if [ ! -f "$o" ] || [ "$c" -nt "$o" ] || [ "$newest_header" -nt "$o" ] ||
     [ "$obj/config.h" -nt "$o" ]; then
    echo "build-ovs: cc $(basename "$c")"
    $cc "${cflags[@]}" -c "$c" -o "$o"
  fi
  provider_objs+=("$o")
done

# ---- 6. link --------------------------------------------------------------------------
ovs_objs=("$obj/vswitchd/bridge.o" "$obj/vswitchd/ovs-vswitchd.o" "$obj/vswitchd/system-stats.o")
ovs_libs=("$obj/ofproto/.libs/libofproto.a" "$obj/lib/.libs/libsflow.a"
          "$obj/lib/.libs/libopenvswitch.a")
[ -f "$obj/lib/.libs/libopenvswitchavx512.a" ] && ovs_libs+=("$obj/lib/.libs/libopenvswitchavx512.a")
# The system libraries libopenvswitch was configured with (ssl, cap-ng, unbound, ...),
# as libtool recorded them.
sys_libs=$(sed -n "s/^dependency_libs='\\(.*\\)'/\\1/p" "$obj/lib/libopenvswitch.la" |
           tr ' ' '\n' | grep '^-l' | tr '\n' ' ')
out=$ovs/ovs-vswitchd-gl
relink=0
[ -f "$out" ] || relink=1
for f in "${provider_objs[@]}" "${ovs_objs[@]}" "${ovs_libs[@]}" "${gl_libs[@]}"; do
  [ "$f" -nt "$out" ] && relink=1
done
if [ "$relink" -eq 1 ]; then
  echo "build-ovs: linking $out"
  # The provider objects go first and whole: nothing in OVS references them, they
  # register datapath type "gl" from their constructor. libgl_dpapi is C++: link with g++.
  g++ -o "$out.tmp" "${provider_objs[@]}" "${ovs_objs[@]}" "${ovs_libs[@]}" "${gl_libs[@]}" \
      $sys_libs -lpthread
  mv "$out.tmp" "$out"
fi
echo "build-ovs: $out (OVS $version, datapath type gl)"
