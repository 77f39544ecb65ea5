#!/bin/sh
# test_cuda_plugin.sh - the CUDA runtime is a dlopen'd plugin
# (libemerge_cuda.so, backends/cuda_load.c), not a link dependency:
#   - the emerge binary and the test programs link no libcudart/libcublas;
#   - every way the plugin can be missing or wrong is a clear message, not
#     a crash: EMERGE_CUDA_PLUGIN naming a missing file (the message names
#     it), a file that is not a shared object, one whose own dependency is
#     missing (what a machine without cudart sees: the dlerror text), one
#     without the entry point, one built for another ABI; `emerge models
#     --devices` still exits 0 with one line, a sweep of a `backend: cuda`
#     member fails with the message;
#   - the search order: next to the program, then its build/rel/;
#   - with the plugin and no GPU: "no CUDA device"; with a GPU: devices.
# The fake plugins are compiled with cc; those cases SKIP without it.
set -u
emerge=${EMERGE_BIN:-build/asan/emerge}
tmp=$(cd "$(mktemp -d)" && pwd -P) # /proc/self/exe paths are canonical
trap 'rm -rf "$tmp"' EXIT
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }
# A crash (signal) or sanitizer report is never a clear error.
clean() { [ "$1" -lt 128 ] && ! grep -qE 'AddressSanitizer|runtime error' "$2"; }

# ---- no link dependency
bins="$emerge"
for t in "$(dirname "$emerge")/tests/test_cuda" "$(dirname "$emerge")/tests/test_cuda_host"; do
    [ -x "$t" ] && bins="$bins $t"
done
bad=""
for b in $bins; do
    ldd "$b" >"$tmp/ldd" 2>&1 || { bad="$bad $b(ldd failed)"; continue; }
    grep -qE 'libcudart|libcublas' "$tmp/ldd" && bad="$bad $b"
done
if [ -z "$bad" ]; then pass "no_cudart_link ($(echo $bins | wc -w) programs)"
else fail no_cudart_link "links cudart/cuBLAS:$bad"; fi

# ---- the family member used by the sweeps below
"$emerge" mkmodel -o "$tmp/m.gguf" --n-embd 16 --n-layer 1 --n-head 2 \
    --n-ff 32 --ctx 128 --n-vocab 354 >/dev/null 2>&1
printf 'name: g\nmembers:\n  - {name: m-1, backend: cuda, path: m.gguf}\n' \
    >"$tmp/fam.yaml"
sweep() {
    "$emerge" sweep --tasks tasks/example-arith.yaml --models "$tmp/fam.yaml" \
        --db "$tmp/x$$.db" --limit 2 --quiet >"$tmp/sw" 2>&1
}

# ---- EMERGE_CUDA_PLUGIN naming a missing file
miss="$tmp/nowhere/libemerge_cuda.so"
EMERGE_CUDA_PLUGIN=$miss "$emerge" models --devices >"$tmp/o" 2>&1
rc=$?
if [ $rc -eq 0 ] && [ "$(wc -l <"$tmp/o")" -eq 1 ] &&
   grep -q "^no CUDA devices: cuda backend: libemerge_cuda.so not found (searched $miss" "$tmp/o"; then
    pass plugin_missing_devices
else fail plugin_missing_devices "rc $rc: $(head -c 400 "$tmp/o")"; fi

EMERGE_CUDA_PLUGIN=$miss "$emerge" models --plugin >"$tmp/o" 2>&1
rc=$?
if [ $rc -eq 1 ] && grep -q "not found (searched $miss" "$tmp/o"; then
    pass plugin_missing_plugin_flag
else fail plugin_missing_plugin_flag "rc $rc: $(head -c 400 "$tmp/o")"; fi

EMERGE_CUDA_PLUGIN=$miss sweep
rc=$?
if [ $rc -ne 0 ] && clean $rc "$tmp/sw" &&
   grep -q "libemerge_cuda.so not found (searched $miss" "$tmp/sw"; then
    pass plugin_missing_sweep
else fail plugin_missing_sweep "rc $rc: $(head -c 400 "$tmp/sw")"; fi

# ---- files that are not (this version's) plugin
devices_says() { # name, EMERGE_CUDA_PLUGIN value, expected text
    EMERGE_CUDA_PLUGIN=$2 "$emerge" models --devices >"$tmp/o" 2>&1
    r=$?
    if [ $r -eq 0 ] && clean $r "$tmp/o" && grep -qF "$3" "$tmp/o"; then pass "$1"
    else fail "$1" "rc $r, expected '$3': $(head -c 400 "$tmp/o")"; fi
}
echo "not a library" >"$tmp/text.so"
devices_says plugin_not_elf "$tmp/text.so" "cannot load $tmp/text.so: "

if command -v cc >/dev/null 2>&1; then
    # A dependency that is gone at run time, as libcudart is on a machine
    # without the CUDA toolkit: the loader's message names it.
    echo 'int ghost(void) { return 1; }' >"$tmp/ghost.c"
    echo 'int ghost(void); int emerge_cuda_plugin(int v) { return v + ghost(); }' >"$tmp/dep.c"
    echo 'int nothing_here(void) { return 0; }' >"$tmp/noentry.c"
    echo 'const void *emerge_cuda_plugin(int v) { (void)v; return 0; }' >"$tmp/oldabi.c"
    if cc -shared -fPIC -o "$tmp/libghost.so" "$tmp/ghost.c" &&
       cc -shared -fPIC -o "$tmp/dep.so" "$tmp/dep.c" -L"$tmp" -lghost &&
       cc -shared -fPIC -o "$tmp/noentry.so" "$tmp/noentry.c" &&
       cc -shared -fPIC -o "$tmp/oldabi.so" "$tmp/oldabi.c"; then
        rm -f "$tmp/libghost.so"
        devices_says plugin_dependency_missing "$tmp/dep.so" "libghost.so: cannot open shared object file"
        devices_says plugin_without_entry "$tmp/noentry.so" "has no symbol emerge_cuda_plugin"
        devices_says plugin_other_abi "$tmp/oldabi.so" "built for another version of emerge"
        EMERGE_CUDA_PLUGIN=$tmp/oldabi.so sweep
        rc=$?
        if [ $rc -ne 0 ] && clean $rc "$tmp/sw" && grep -q "built for another version" "$tmp/sw"; then
            pass plugin_other_abi_sweep
        else fail plugin_other_abi_sweep "rc $rc: $(head -c 400 "$tmp/sw")"; fi
    else
        echo "SKIP plugin_fakes: cc could not build the fake plugins"
    fi
else
    echo "SKIP plugin_fakes: no cc"
fi

# ---- the search without EMERGE_CUDA_PLUGIN, on a copy of the program
mkdir -p "$tmp/a/b/bin"
cp "$emerge" "$tmp/a/b/bin/emerge"
"$tmp/a/b/bin/emerge" models --devices >"$tmp/o" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "not found (searched $tmp/a/b/bin/libemerge_cuda.so, $tmp/a/b/bin/build/rel/libemerge_cuda.so, $tmp/a/b/rel/libemerge_cuda.so, $tmp/a/rel/libemerge_cuda.so, $tmp/a/b/lib/emerge/libemerge_cuda.so; build with nvcc: make CUDA=1" "$tmp/o"; then
    pass plugin_search_not_found
else fail plugin_search_not_found "rc $rc: $(head -c 500 "$tmp/o")"; fi

plugin=$("$emerge" models --plugin 2>"$tmp/perr")
if [ -z "$plugin" ]; then
    echo "SKIP plugin_search_order: no plugin built ($(head -c 200 "$tmp/perr"))"
    echo "SKIP plugin_present_no_device: no plugin built"
    exit 0
fi
mkdir -p "$tmp/a/b/bin/build/rel"
ln -s "$plugin" "$tmp/a/b/bin/build/rel/libemerge_cuda.so"
p1=$("$tmp/a/b/bin/emerge" models --plugin 2>&1)
ln -s "$plugin" "$tmp/a/b/bin/libemerge_cuda.so"
p2=$("$tmp/a/b/bin/emerge" models --plugin 2>&1)
if [ "$p1" = "$tmp/a/b/bin/build/rel/libemerge_cuda.so" ] &&
   [ "$p2" = "$tmp/a/b/bin/libemerge_cuda.so" ]; then
    pass plugin_search_order
else fail plugin_search_order "build/rel: '$p1'; next to the program: '$p2'"; fi

# ---- the real plugin: devices listed, or no device said clearly
"$emerge" models --devices >"$tmp/dev" 2>&1
rc=$?
if grep -q '^cuda:[0-9]' "$tmp/dev"; then
    [ $rc -eq 0 ] && pass "plugin_present_devices ($(grep -c '^cuda:' "$tmp/dev"))" ||
        fail plugin_present_devices "rc $rc"
    exit 0
fi
sweep
src=$?
if [ $rc -eq 0 ] && grep -q '^no CUDA devices: ' "$tmp/dev" &&
   [ $src -ne 0 ] && clean $src "$tmp/sw" && grep -q 'no CUDA device' "$tmp/sw"; then
    pass plugin_present_no_device
else fail plugin_present_no_device "devices rc $rc: $(head -c 200 "$tmp/dev"); sweep rc $src: $(head -c 300 "$tmp/sw")"; fi
