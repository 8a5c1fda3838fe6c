#!/usr/bin/env bash
# Build fastkern with AddressSanitizer and UndefinedBehaviorSanitizer and run the
# test suite under them; any report fails the run.
#
#   tools/sanitize.sh [pytest args...]      (default: -m "not slow" tests)
#
# The extensions are compiled with -fsanitize=address,undefined and
# -fno-sanitize-recover=all (FASTKERN_SANITIZE in setup.py), so the first undefined
# behaviour aborts the process;
# Python itself is not instrumented, so the ASan runtime is preloaded.  Needs gcc
# (or clang) with its sanitizer runtimes.  CUDA is not built.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cc="${CC:-gcc}"
asan="$("$cc" -print-file-name=libasan.so)"
if [ ! -e "$asan" ]; then
    echo "sanitize: $cc has no libasan.so" >&2
    exit 1
fi

python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install --quiet --upgrade pip
# a copy of the tree: the build must not touch the checkout's own build files
mkdir -p "$work/src-copy"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -I{} cp --parents {} "$work/src-copy/")
FASTKERN_SANITIZE=address,undefined FASTKERN_CUDA=0 \
    "$py" -m pip install --quiet "$work/src-copy[test]"
cp -r "$repo/tests" "$work/tests"

# detect_leaks=0: CPython frees little at exit by design; allocator_may_return_null:
# tests ask for impossible allocations and expect MemoryError, not an abort;
# max_allocation_size_mb: ASan reserves memory it never touches, so without a cap
# an allocation larger than the machine succeeds, and a call the tests expect to
# fail with MemoryError runs for hours instead.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:max_allocation_size_mb=16384:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
cd "$work"
if [ $# -eq 0 ]; then set -- -m "not slow" tests; fi
LD_PRELOAD="$asan" "$py" -m pytest -p no:cacheprovider -q "$@"
