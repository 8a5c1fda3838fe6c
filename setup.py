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
"""
import os
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

HERE = Path(__file__).parent.resolve()
DEBUG = os.environ.get("FASTKERN_DEBUG", "0") == "1"

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


def base_compile_args():
    if _compiler().compiler_type == "msvc":
        return ["/O2"]
    # Portable: no -march=native.  SIMD comes from run-time dispatch (fk_simd.h).
    return ["-O3", "-fno-math-errno", "-Wno-unused-function"]


def extensions():
    omp = openmp_flags()
    if omp is None:
        print("fastkern: OpenMP not found or disabled; building serial kernels", file=sys.stderr)
    cflags = base_compile_args() + (omp[0] if omp else [])
    ldflags = omp[1] if omp else []
    macros = [("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")]
    npyrandom_dir = os.path.join(os.path.dirname(np.get_include()), "..", "random", "lib")
    libraries = ["npyrandom"] + (["m"] if os.name == "posix" else [])
    exts = []
    for pyx in sorted(glob("src/fastkern/_*.pyx")):
        name = Path(pyx).stem                      # "_convolve"
        topic = name.lstrip("_")                   # "convolve"
        sources = [pyx] + sorted(glob(f"csrc/{topic}/*.c"))
        exts.append(Extension(
            f"fastkern.{name}", sources,
            include_dirs=[np.get_include(), "csrc"],
            library_dirs=[os.path.normpath(npyrandom_dir)],
            libraries=libraries,
            define_macros=macros,
            extra_compile_args=cflags,
            extra_link_args=ldflags,
        ))
    return cythonize(exts, compiler_directives=DIRECTIVES,
                     compile_time_env={"FASTKERN_DEBUG": DEBUG})


setup(ext_modules=extensions())
