#!/usr/bin/env bash
# Build fastkern with a free-threaded CPython (3.13t, built with --disable-gil)
# and run the test suite and the 2-thread scaling check with it.
#
#   tools/freethreaded.sh [pytest args...]      (default: the whole suite, tests)
#
# The whole suite: its tests marked slow add about 15 s here (most of them need
# a GPU and skip).
#
# No Debian suite ships a free-threaded interpreter for this machine, so the tool
# keeps one in a Debian 13 (trixie) chroot made by debootstrap, under a cache
# directory outside the checkout:
#
#   ${FASTKERN_FT_CACHE:-/var/cache/fastkern-freethreaded}/
#       trixie/                  the chroot (debootstrap, then build tools)
#       trixie/opt/python3.13t/  CPython built there from trixie's python3.13
#                                source package (the upstream tarball in it)
#       trixie/opt/ft-venv/      a venv with the pinned cp313t wheels below
#
# Each part is built into a temporary name and renamed when complete, and is
# reused while it still works (the interpreter must run and report
# Py_GIL_DISABLED); an interrupted or broken part is built again.  From nothing
# this took 13 minutes on 2 shared cores (CPython 6, fastkern 3, the suite 2.5),
# with the cache 4.
#
# Then, every run: the checkout's files (tracked, and untracked but not ignored)
# are copied into the chroot and installed with FASTKERN_CUDA=0; a fresh process
# imports every fastkern module and fails if that enabled the GIL (no
# `-X gil=0` or PYTHON_GIL is set); pytest runs a copy of tests/ from outside
# the source tree; bench/bench_freethreaded.py prints the 2-thread speed-up,
# which is reported, never judged (the machine is shared and noisy).
#
# Needs root (debootstrap, chroot, mounts) and Debian's debootstrap (installed
# with apt-get when missing).  The Debian mirror is the host's own, read from its
# apt sources; the host's locally added CA certificates are trusted in the chroot.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cache="${FASTKERN_FT_CACHE:-/var/cache/fastkern-freethreaded}"
root="$cache/trixie"
suite=trixie
python_prefix=/opt/python3.13t
venv=/opt/ft-venv
# cp313t wheels exist for these; newer numpy/scipy releases may have none and
# fall back to source builds.  Cython, setuptools, pybind11: fastkern's build.
# Not Dask: binary-only, pip resolves dask[array] to a 2020 release and
# distributed to nothing, so fastkern.dask's tests skip here.
pins=(numpy==2.4.6 scipy==1.17.1 hypothesis==6.155.7 pytest==9.2.0
      pytest-benchmark==5.3.1 threadpoolctl==3.8.0
      Cython==3.3.1 setuptools==84.2.1 pybind11==3.1.0)
build_packages=(ca-certificates gcc g++ make pkg-config xz-utils
                libssl-dev zlib1g-dev libffi-dev libbz2-dev liblzma-dev
                libsqlite3-dev libreadline-dev uuid-dev)

say() { echo "freethreaded: [${SECONDS}s] $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot and mounts)"
mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9   # one run at a time uses the cache

# Every mount under the cache, deepest first: what a step (or an interrupted
# run, or debootstrap itself) left mounted.
unmount_all() {
    local m
    awk -v c="$cache/" 'index($2, c) == 1 {print $2}' /proc/mounts | sort -r |
        while read -r m; do
            umount "$m" 2>/dev/null || umount -l "$m" || true
        done
}
# rm -rf of a chroot, but never through a mount left in it (a bound /dev is the
# host's own).
remove_tree() {
    local dir
    for dir in "$@"; do
        if awk -v d="$dir/" 'index($2, d) == 1 {found = 1} END {exit !found}' /proc/mounts; then
            die "$dir still has mounts in it; not removing it"
        fi
        rm -rf "$dir"
    done
}
run_dir=""
cleanup() {
    unmount_all
    if [ -n "$run_dir" ]; then remove_tree "$run_dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
unmount_all

# The host's Debian mirror: the first archive URI of its apt sources whose suites
# include the release itself (not -security, -updates or -backports).
host_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
               uris = ""; main = 0
               for (i = 1; i <= NF; i++) {
                 if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris = u[1] }
                 if ($i ~ /^Suites:/) {
                   n = split($i, s, /[ \t]+/)
                   for (j = 2; j <= n; j++) if (s[j] !~ /-/) main = 1
                 }
               }
               if (uris != "" && main) { print uris; exit }
             }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk '$1 == "deb" {
               k = 2; while ($k ~ /^\[/) { while ($k !~ /\]$/) k++; k++ }
               if ($(k + 1) !~ /-/) { print $k; exit }
             }' "$f"
    done
}

# Run a command in a chroot with /proc, /sys and /dev mounted for it (the trap
# unmounts them whatever happens).
in_chroot() {
    local dir="$1"
    shift
    # rslave: unmounting the copy of /dev must not reach the host's
    { mountpoint -q "$dir/proc" || mount -t proc proc "$dir/proc"; } &&
        { mountpoint -q "$dir/sys" || mount -t sysfs sysfs "$dir/sys"; } &&
        { mountpoint -q "$dir/dev" || mount --rbind /dev "$dir/dev"; } &&
        mount --make-rslave "$dir/dev" || { say "mounting in $dir failed"; return 1; }
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 \
        PIP_DEFAULT_TIMEOUT="${PIP_DEFAULT_TIMEOUT:-180}" CI="${CI:-}" \
        "$@"
    local rc=$?
    unmount_all
    return $rc
}

# The host's locally added CA certificates (a proxy's, say), trusted in the chroot.
trust_host_certificates() {
    local dir="$1"
    mkdir -p "$dir/usr/local/share/ca-certificates"
    if [ -d /usr/local/share/ca-certificates ]; then
        cp -r /usr/local/share/ca-certificates/. "$dir/usr/local/share/ca-certificates/"
    fi
    in_chroot "$dir" update-ca-certificates >/dev/null
}

ensure_root() {
    if [ -e "$root/.fastkern-complete" ] && chroot "$root" /bin/true 2>/dev/null; then
        trust_host_certificates "$root"
        return
    fi
    local mirror tmp="$cache/trixie.tmp"
    mirror="$(host_mirror | head -n 1)"
    [ -n "$mirror" ] || die "no Debian mirror found in the host's apt sources"
    if ! command -v debootstrap >/dev/null; then
        say "installing debootstrap"
        apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null
    fi
    say "debootstrap $suite from $mirror (a few minutes)"
    remove_tree "$tmp" "$root"
    debootstrap --variant=minbase --include=ca-certificates "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
        { tail -n 20 "$cache/debootstrap.log" >&2; die "debootstrap failed"; }
    unmount_all
    printf 'deb %s %s main\ndeb-src %s %s main\n' "$mirror" "$suite" "$mirror" "$suite" \
        >"$tmp/etc/apt/sources.list"
    trust_host_certificates "$tmp"
    say "installing the build tools in the chroot"
    in_chroot "$tmp" sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        ${build_packages[*]} >/dev/null && apt-get clean"
    touch "$tmp/.fastkern-complete"
    mv "$tmp" "$root"
}

python_ok() {
    [ -x "$root$python_prefix/bin/python3" ] && chroot "$root" "$python_prefix/bin/python3" -c '
import sys, sysconfig
sys.exit(0 if sysconfig.get_config_var("Py_GIL_DISABLED") == 1 else 1)' 2>/dev/null
}

ensure_python() {
    python_ok && return
    say "building CPython 3.13 with --disable-gil from $suite's python3.13 source (about 6 minutes)"
    remove_tree "$root/opt/python-build" "$root$python_prefix"
    mkdir -p "$root/opt/python-build"
    # upstream's tarball from the source package, without Debian's patches (which
    # change the install layout for Debian's own python3); no test modules (nor
    # Lib/test, a third of the stdlib to byte-compile at install)
    in_chroot "$root" sh -ec "
        cd /opt/python-build
        apt-get source --download-only -qq python3.13 >/dev/null 2>&1
        tar xf \$(ls python3.13_*.orig.tar.* | grep -v '\\.asc\$')
        cd Python-3.13.*
        ./configure -q --disable-gil --disable-test-modules --prefix=$python_prefix \\
            --with-ensurepip=no >/dev/null
        nice -n 10 make -s -j\$(nproc) >/dev/null 2>make.log || { tail -n 30 make.log; exit 1; }
        make -s install DESTDIR=/opt/python-build/stage >/dev/null 2>&1
        mv /opt/python-build/stage$python_prefix $python_prefix
        cd / && rm -rf /opt/python-build
    " || die "building CPython failed"
    python_ok || die "the CPython built does not report Py_GIL_DISABLED"
}

ensure_venv() {
    local stamp="$root$venv/.fastkern-pins"
    if [ -e "$stamp" ] && [ "$(cat "$stamp")" = "${pins[*]}" ] &&
        chroot "$root" "$venv/bin/python" -c 'import numpy, scipy, pytest' 2>/dev/null; then
        return
    fi
    say "making the venv: ${pins[*]}"
    remove_tree "$root$venv"
    in_chroot "$root" sh -ec "
        $python_prefix/bin/python3 -m venv $venv
        $venv/bin/python -m pip install -q --upgrade pip
        $venv/bin/python -m pip install -q --only-binary=:all: ${pins[*]}
    " || die "installing the wheels failed"
    echo "${pins[*]}" >"$stamp"
}

ensure_root
ensure_python
ensure_venv

# This run's copy of the checkout, installed into the venv.
run_dir="$(mktemp -d "$root/tmp/fastkern-run.XXXXXX")"
run="/tmp/$(basename "$run_dir")"
mkdir -p "$run_dir/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -I{} cp --parents {} "$run_dir/src/")
cp -r "$repo/tests" "$run_dir/tests"
cp -r "$repo/bench" "$run_dir/bench"
if [ $# -eq 0 ]; then set -- tests; fi
printf '%q ' "$@" >"$run_dir/pytest-args"

# setuptools reads this file too: the extensions compile in parallel
printf '[build_ext]\nparallel = %s\n' "$(nproc)" >"$run_dir/build.cfg"

say "building fastkern with $python_prefix (FASTKERN_CUDA=0)"
in_chroot "$root" sh -ec "
    cd $run
    DIST_EXTRA_CONFIG=$run/build.cfg FASTKERN_CUDA=0 nice -n 10 \
        $venv/bin/python -m pip install -q --no-build-isolation --no-deps --force-reinstall ./src
"
say "testing"
in_chroot "$root" sh -ec "
    cd $run
    echo '== importing every fastkern module leaves the GIL disabled'
    $venv/bin/python - <<'EOF'
import importlib, pkgutil, sys, sysconfig
import fastkern

assert sysconfig.get_config_var('Py_GIL_DISABLED') == 1, 'not a free-threaded build'
skipped = []
for info in pkgutil.walk_packages(fastkern.__path__, 'fastkern.'):
    if info.name == 'fastkern.__main__':  # runs the main job when imported
        continue
    try:
        importlib.import_module(info.name)
    except ImportError as exc:  # an optional dependency: torch, dask, CUDA
        skipped.append(f'{info.name} ({exc})')
print(sys.version)
print('not imported (optional dependency missing):', *skipped, sep='\n  ')
if sys._is_gil_enabled():
    sys.exit('the GIL is enabled after importing fastkern')
print('sys._is_gil_enabled() is False')
EOF
    echo '== pytest' \$(cat pytest-args)
    eval \"nice -n 10 $venv/bin/python -m pytest -p no:cacheprovider -q \$(cat pytest-args)\"
    echo '== 2-thread scaling (reported, not judged)'
    nice -n 10 $venv/bin/python bench/bench_freethreaded.py --repeat 3
"
say "done"
