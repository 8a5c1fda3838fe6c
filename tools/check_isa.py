"""Check that compiled extensions run on any x86-64 CPU (x86-64-v1).

A wheel built with -march=native (or -mavx2, ...) puts AVX instructions in code that
every CPU executes, and crashes with SIGILL on older CPUs.  fastkern allows
AVX/AVX-512 only in the SIMD clones that run-time dispatch selects (functions whose
names end in ``.arch_x86_64_v3`` / ``.arch_x86_64_v4``, see csrc/common/fk_simd.h).
Hand-dispatched functions (compiled with ``__attribute__((target(...)))`` and called
only after a run-time CPU check) are allowed too when their names end in ``_avx2``
or ``_avx512``.  This script disassembles each extension and fails if any other
function uses ymm/zmm registers or other VEX/EVEX-only instructions.

    python tools/check_isa.py path/to/site-packages/fastkern
    python tools/check_isa.py dist/            # the wheels in a folder
"""
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

CLONE = re.compile(r"\.arch_x86_64_v[34]|_avx(?:2|512)(?:\.[a-z]+\.\d+)?$")
# registers and instructions that x86-64-v1 (SSE2) does not have
ADVANCED = re.compile(r"%[yz]mm\d|%k[0-7]\b|\bv(?:fmadd|broadcast|permq|pbroadcast|gather|zeroupper)")


def offending_functions(so):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)],
                         capture_output=True, text=True, check=True).stdout
    bad, func = {}, None
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m.group(1)
            continue
        if func and not CLONE.search(func) and ADVANCED.search(line):
            bad.setdefault(func, line.strip())
    return bad


def main(paths):
    if shutil.which("objdump") is None:
        print("check_isa: objdump not found; skipped")
        return 0
    tmp = tempfile.TemporaryDirectory()
    sos = []
    for path in map(pathlib.Path, paths):
        wheels = [path] if path.suffix == ".whl" else sorted(path.rglob("*.whl"))
        for i, wheel in enumerate(wheels):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(pathlib.Path(tmp.name) / str(i))
        sos += sorted(pathlib.Path(tmp.name).rglob("*.so")) if wheels else []
        if path.is_dir():
            sos += sorted(path.rglob("*.so"))
    sos = sorted(set(sos))
    if not sos:
        print(f"check_isa: no extension modules under {paths}")
        return 1
    failed = False
    for so in sos:
        bad = offending_functions(so)
        for func, line in sorted(bad.items()):
            failed = True
            print(f"{so.name}: {func} uses instructions beyond x86-64-v1: {line}")
        if not bad:
            print(f"{so.name}: baseline code is x86-64-v1; AVX only in dispatched clones")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["."]))
