"""Build fastkern's compiled extensions.

Conventions, so that a new kernel needs no change here:
- every ``src/fastkern/_<topic>.pyx`` becomes the extension ``fastkern._<topic>``;
- the plain C sources in ``csrc/<topic>/*.c`` are compiled into it;
- ``csrc/`` is on the include path (``#include "common/fk_openmp.h"``);
- every extension links NumPy's static ``npyrandom`` library, so Cython code can
  ``cimport numpy.random.c_distributions`` and draw through ``bitgen_t``.

OpenMP flags are found by compiling and running a probe program; without them
every extension still builds and runs serially (``FASTKERN_OPENMP=0`` forces that).
``FASTKERN_DEBUG=1`` turns Cython's bounds and wraparound checks back on.
``FASTKERN_SANITIZE=address,undefined`` (gcc/clang) builds for the sanitizers, at
-O1 and with no recovery from undefined behaviour (tools/sanitize.sh).

CUDA (Linux): where nvcc is found, ``csrc/*/*.cu`` are compiled with it and linked,
with ``csrc/attention/bindings.cpp`` and the static CUDA runtime, into the pybind11
extension ``fastkern._cuda`` (never against libtorch: it takes device pointers).
``FASTKERN_CUDA=1`` makes a missing nvcc or a failed CUDA compile an error,
``FASTKERN_CUDA=0`` skips CUDA; unset, a failed CUDA compile is a warning and the
rest still builds.  ``FASTKERN_CUDA_ARCH`` lists the targets: ``sm_XY`` for machine
code, ``compute_XY`` for PTX the driver compiles at load time (default
``sm_80,sm_90,compute_90``); nvcc's ``native``, ``all`` and ``all-major`` also work.
nvcc is looked for in ``$CUDA_HOME/bin``, ``$CUDA_PATH/bin``, ``PATH`` and
``/usr/local/cuda/bin``; ``$CUDAHOSTCXX`` picks its host compiler.
"""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from glob import glob
from pathlib import Path

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent.resolve()
DEBUG = os.environ.get("FASTKERN_DEBUG", "0") == "1"
SANITIZE = os.environ.get("FASTKERN_SANITIZE", "")

# Cython directives: the one place they are set.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
    "freethreading_compatible": True,
}

OPENMP_PROBE = r"""
#include <omp.h>
#include <stdio.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    printf("%d\n", n);
    return n > 0 ? 0 : 1;
}
"""


def _compiler():
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.sysconfig import customize_compiler

    cc = new_compiler()
    customize_compiler(cc)
    return cc


def _openmp_candidates(cc):
    if cc.compiler_type == "msvc":
        return [(["/openmp:llvm"], []), (["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]
    if sys.platform == "darwin":
        # Apple clang with Homebrew/conda libomp
        prefixes = [os.environ.get("OPENMP_PREFIX", ""), "/opt/homebrew/opt/libomp",
                    "/usr/local/opt/libomp", os.environ.get("CONDA_PREFIX", "")]
        for p in filter(None, prefixes):
            candidates.append(([f"-Xpreprocessor", "-fopenmp", f"-I{p}/include"],
                               [f"-L{p}/lib", "-lomp", f"-Wl,-rpath,{p}/lib"]))
    return candidates


def openmp_flags():
    """(compile_args, link_args) that build and run an OpenMP program, or None."""
    if os.environ.get("FASTKERN_OPENMP", "1") == "0":
        return None
    cc = _compiler()
    for cflags, ldflags in _openmp_candidates(cc):
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            try:
                objs = cc.compile([src], output_dir=tmp, extra_postargs=cflags)
                exe = os.path.join(tmp, "probe")
                cc.link_executable(objs, exe, extra_postargs=ldflags)
                exe = exe + (".exe" if sys.platform == "win32" else "")
                subprocess.run([exe], check=True, capture_output=True, timeout=60)
            except Exception:
                continue
        return cflags, ldflags
    return None


# Topics whose results a plain NumPy loop reproduces bit for bit (random draws
# through NumPy's own C distributions; locate's errors, summed as its reference
# loop sums them): no fused multiply-adds there, which
# GCC/clang would otherwise form where the target has them (aarch64, ppc64le).
# And attention: its backward pass recomputes the forward pass's scores and
# needs them bit for bit (exp(score - lse) with a large scale turns one unit in
# the last place into a weight far from 1), but GCC contracts a * b + c into an
# FMA in one inlined copy of the dot product and not in another (GCC 14 does so
# where GCC 12 did not).
EXACT_TOPICS = {"attention", "bootstrap", "gibbs", "locate"}


def base_compile_args():
    if _compiler().compiler_type == "msvc":
        return ["/O2"]
    if SANITIZE:
        return [f"-fsanitize={SANITIZE}", "-fno-sanitize-recover=all", "-O1", "-g",
                "-fno-omit-frame-pointer", "-fno-math-errno", "-Wno-unused-function"]
    # Portable: no host-specific -march flag.  SIMD comes from run-time dispatch (fk_simd.h).
    return ["-O3", "-fno-math-errno", "-Wno-unused-function"]


def extensions():
    omp = openmp_flags()
    if omp is None:
        print("fastkern: OpenMP not found or disabled; building serial kernels", file=sys.stderr)
    cflags = base_compile_args() + (omp[0] if omp else [])
    ldflags = (omp[1] if omp else []) + ([f"-fsanitize={SANITIZE}"] if SANITIZE else [])
    macros = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]
    npyrandom_dir = os.path.join(os.path.dirname(np.get_include()), "..", "random", "lib")
    libraries = ["npyrandom"] + (["m"] if os.name == "posix" else [])
    exts = []
    for pyx in sorted(glob("src/fastkern/_*.pyx")):
        name = Path(pyx).stem                      # "_convolve"
        topic = name.lstrip("_")                   # "convolve"
        sources = [pyx] + sorted(glob(f"csrc/{topic}/*.c"))
        exact = ["-ffp-contract=off"] if topic in EXACT_TOPICS and cflags[0] != "/O2" else []
        exts.append(Extension(
            f"fastkern.{name}", sources,
            # headers: an edit to one rebuilds the extension
            depends=sorted(glob(f"csrc/{topic}/*.h") + glob("csrc/common/*.h")),
            include_dirs=[np.get_include(), "csrc"],
            library_dirs=[os.path.normpath(npyrandom_dir)],
            libraries=libraries,
            define_macros=macros,
            extra_compile_args=cflags + exact,
            extra_link_args=ldflags,
        ))
    # a debug build writes its C elsewhere: cythonize compares timestamps only, and
    # would otherwise reuse the release build's C
    return cythonize(exts, compiler_directives=DIRECTIVES,
                     compile_time_env={"FASTKERN_DEBUG": DEBUG},
                     build_dir="build/cython-debug" if DEBUG else None)


# ---------------------------------------------------------------------- CUDA

CUDA_ARCH_DEFAULT = "sm_80,sm_90,compute_90"


def cuda_mode():
    """"0" (skip), "1" (required) or "auto" (where nvcc is found), from FASTKERN_CUDA."""
    mode = os.environ.get("FASTKERN_CUDA", "").strip() or "auto"
    if mode not in ("0", "1", "auto"):
        raise SystemExit(f"FASTKERN_CUDA must be 0, 1 or unset, got {mode!r}")
    return mode


def find_nvcc():
    """Path of nvcc, or None."""
    candidates = [os.path.join(os.environ[var], "bin", "nvcc")
                  for var in ("CUDA_HOME", "CUDA_PATH") if os.environ.get(var)]
    candidates += [shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"]
    for path in filter(None, candidates):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return os.path.realpath(path)
    return None


def cuda_root(nvcc):
    """The toolkit nvcc belongs to, as nvcc reports it (nvcc may be a wrapper script)."""
    dry = subprocess.run([nvcc, "--dryrun", "-c", "-x", "cu", os.devnull, "-o", os.devnull],
                         capture_output=True, text=True)
    top = re.search(r"^#\$ TOP=(.+)$", dry.stdout + dry.stderr, re.MULTILINE)
    return Path(top.group(1).strip() if top else Path(nvcc).parent.parent).resolve()


def cuda_library_dir(root):
    """The folder of the toolkit at root that holds libcudart_static.a."""
    for sub in ("lib64", "lib", *sorted(glob("targets/*/lib", root_dir=root))):
        if (root / sub / "libcudart_static.a").is_file():
            return root / sub
    raise SystemExit(f"fastkern: libcudart_static.a not found under {root}")


def cuda_arch_flags(spec):
    """nvcc target flags for a FASTKERN_CUDA_ARCH value."""
    flags = []
    for item in filter(None, re.split(r"[,;\s]+", spec)):
        match = re.fullmatch(r"(sm|compute)_(\d+[af]?)", item)
        if item in ("native", "all", "all-major"):
            flags.append(f"-arch={item}")
        elif match:
            kind, cc = match.groups()
            flags.append(f"-gencode=arch=compute_{cc},code={kind}_{cc}")
        else:
            raise SystemExit(f"FASTKERN_CUDA_ARCH: expected items like sm_90 or compute_90 "
                             f"(or native, all, all-major), got {item!r}")
    if not flags:
        raise SystemExit("FASTKERN_CUDA_ARCH names no target")
    return flags


def _version():
    text = (HERE / "src" / "fastkern" / "_version.py").read_text()
    return re.search(r"__version__\s*=\s*[\"']([^\"']+)", text).group(1)


def cuda_extension():
    """The pybind11 extension fastkern._cuda, or None where CUDA is skipped."""
    mode = cuda_mode()
    if mode == "0":
        return None
    nvcc = find_nvcc() if sys.platform.startswith("linux") else None
    if nvcc is None:
        where = ("nvcc was not found (looked in $CUDA_HOME/bin, $CUDA_PATH/bin, PATH and "
                 "/usr/local/cuda/bin)" if sys.platform.startswith("linux")
                 else f"the CUDA build is supported on Linux only, not {sys.platform}")
        if mode == "1":
            raise SystemExit(f"FASTKERN_CUDA=1, but {where}")
        print(f"fastkern: {where}; building without CUDA kernels", file=sys.stderr)
        return None
    try:
        from pybind11.setup_helpers import Pybind11Extension
    except ImportError:
        if mode == "1":
            raise SystemExit("FASTKERN_CUDA=1, but pybind11 is not installed") from None
        print("fastkern: pybind11 not installed; building without CUDA kernels", file=sys.stderr)
        return None

    root = cuda_root(nvcc)
    ext = Pybind11Extension(
        "fastkern._cuda",
        sorted(glob("csrc/*/bindings.cpp")),
        include_dirs=["csrc", str(root / "include")],
        library_dirs=[str(cuda_library_dir(root))],
        libraries=["cudart_static", "dl", "rt", "pthread"],
        # cudart's symbols stay private to the module
        extra_link_args=["-Wl,--exclude-libs,libcudart_static.a"],
        define_macros=[("FASTKERN_VERSION", f'"{_version()}"')],
        cxx_std=17,
        # unset FASTKERN_CUDA: a failed CUDA build is a warning, not the end of the install
        optional=mode != "1",
    )
    ext.cuda_sources = sorted(glob("csrc/*/*.cu"))
    ext.cuda_depends = sorted(glob("csrc/*/*.cuh") + glob("csrc/*/*_cuda.h"))
    ext.nvcc = nvcc
    ext.nvcc_flags = [
        "-O3", "-std=c++17", "-DNDEBUG", "-Icsrc",
        "--compiler-options=-fPIC,-fvisibility=hidden",
        *(["-ccbin", os.environ["CUDAHOSTCXX"]] if os.environ.get("CUDAHOSTCXX") else []),
        *cuda_arch_flags(os.environ.get("FASTKERN_CUDA_ARCH", CUDA_ARCH_DEFAULT)),
    ]
    return ext


class BuildExt(build_ext):
    """build_ext that first compiles an extension's ``cuda_sources`` with nvcc, in
    parallel, and links the objects in."""

    def build_extension(self, ext):
        sources = getattr(ext, "cuda_sources", ())
        if sources:
            ext.extra_objects = list(ext.extra_objects or []) + self._nvcc_compile(ext)
        super().build_extension(ext)

    def _nvcc_compile(self, ext):
        from concurrent.futures import ThreadPoolExecutor
        from setuptools.errors import CompileError

        out_dir = Path(self.build_temp) / "cuda"
        out_dir.mkdir(parents=True, exist_ok=True)

        def compile_one(src):
            obj = out_dir / (Path(src).stem + ".o")
            deps = [src, *ext.cuda_depends]
            if self.force or not obj.exists() or any(
                    os.path.getmtime(dep) > obj.stat().st_mtime for dep in deps):
                cmd = [ext.nvcc, "-c", src, "-o", str(obj), *ext.nvcc_flags]
                print(" ".join(cmd), file=sys.stderr)
                result = subprocess.run(cmd, capture_output=True, text=True)
                if result.returncode:
                    raise CompileError(f"nvcc failed on {src}:\n{result.stdout}{result.stderr}")
            return str(obj)

        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            return list(pool.map(compile_one, ext.cuda_sources))


def all_extensions():
    exts = extensions()
    cuda = cuda_extension()
    return exts + ([cuda] if cuda is not None else [])


setup(ext_modules=all_extensions(), cmdclass={"build_ext": BuildExt})
