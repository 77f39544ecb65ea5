#!/bin/sh
# tools/deps.sh - the Debian packages emerge needs, checked and installed.
#   check       exit 1 when a package needed to build is missing
#   check-test  exit 1 when a package needed by the tests (or by `make man`:
#               help2man) is missing
#   install     apt-get install whatever is missing (build + test)
set -u
BUILD_PKGS="gcc make libcjson-dev libyaml-dev libpcre2-dev libsqlite3-dev libcurl4-openssl-dev libmicrohttpd-dev libssl-dev"
TEST_PKGS="python3 python3-nltk gnuplot-nox valgrind clang libclang-rt-14-dev chromium help2man groff-base"

missing() {
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || printf '%s ' "$p"
    done
}

case "${1:-check}" in
check)
    m=$(missing $BUILD_PKGS)
    [ -z "$m" ] || { echo "emerge: missing build packages: $m(run 'make deps')" >&2; exit 1; } ;;
check-test)
    m=$(missing $TEST_PKGS)
    [ -z "$m" ] || { echo "emerge: missing test packages: $m" >&2; exit 1; } ;;
install)
    m=$(missing $BUILD_PKGS $TEST_PKGS)
    [ -z "$m" ] && exit 0
    echo "emerge: installing $m" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq || exit 1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $m || exit 1 ;;
*)
    echo "usage: tools/deps.sh check|check-test|install" >&2; exit 2 ;;
esac
