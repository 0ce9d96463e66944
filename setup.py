"""Build fastopt's Cython kernels, with OpenMP when the compiler supports it.

The OpenMP probe follows scikit-learn's ``sklearn/_build_utils/openmp_helpers.py`` and astropy's
``extension_helpers/_openmp_helpers.py``: compile, link and *run* a tiny OpenMP program with the
very compiler setuptools is about to use.  On success every extension gets the OpenMP flags; on
failure the build warns and produces serial code (Cython guards its ``prange`` pragmas with
``#ifdef _OPENMP``, and ``src_c/fastopt_openmp.h`` stubs the runtime calls).

Environment variables
---------------------
FASTOPT_NO_OPENMP=1       skip the probe and build serial code.
FASTOPT_FAIL_NO_OPENMP=1  a failed probe is an error instead of a warning (CI sets it).
FASTOPT_DEBUG_CYTHON=1    turn Cython's bounds and initialisation checks back on.
FASTOPT_NATIVE=1          compile for this machine's CPU (-march=native: AVX2/AVX-512 where
                          present). Faster kernels, but the build only runs on CPUs like this one:
                          for a local `pip install`, never for a wheel that ships elsewhere.
"""

import glob
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))

OPENMP_TEST_PROGRAM = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int nthreads = 0;
        #pragma omp parallel
        {
            #pragma omp atomic
            nthreads += 1;
        }
        printf("%d\\n", nthreads == omp_get_max_threads());
        return 0;
    }
    """
)


def _env_flag(name):
    return os.environ.get(name, "0").strip().lower() not in ("", "0", "false", "no")


def _openmp_flags(compiler):
    """Return (compile_args, link_args) enabling OpenMP for ``compiler``."""
    if compiler.compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag; libomp comes from Homebrew or conda.
        return ["-Xpreprocessor", "-fopenmp"], ["-lomp"]
    return ["-fopenmp"], ["-fopenmp"]


def _probe_openmp(compiler, compile_args, link_args):
    """Compile, link and run the test program; True when it works and reports its threads."""
    tmp = tempfile.mkdtemp(prefix="fastopt-openmp-")
    try:
        source = os.path.join(tmp, "test_openmp.c")
        with open(source, "w") as f:
            f.write(OPENMP_TEST_PROGRAM)
        objects = compiler.compile([source], output_dir=tmp, extra_postargs=compile_args)
        exe = os.path.join(tmp, "test_openmp")
        # LDFLAGS reach shared libraries but not executables: the probe needs them too (a
        # -fsanitize=address build compiles the probe with it, from CFLAGS).
        env_ldflags = shlex.split(os.environ.get("LDFLAGS", ""))
        compiler.link_executable(objects, "test_openmp", output_dir=tmp,
                                 extra_postargs=link_args + env_ldflags)
        out = subprocess.run([exe], capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip() == "1"
    except Exception as exc:  # any compile, link or run failure means "no usable OpenMP"
        print(f"fastopt: OpenMP probe failed: {exc}")
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class build_ext_openmp(build_ext):
    """build_ext that probes OpenMP once and adds its flags (or builds serial code)."""

    def build_extensions(self):
        compile_args, link_args = [], []
        if _env_flag("FASTOPT_NO_OPENMP"):
            print("fastopt: FASTOPT_NO_OPENMP is set, building serial kernels")
        else:
            omp_compile, omp_link = _openmp_flags(self.compiler)
            if _probe_openmp(self.compiler, omp_compile, omp_link):
                print(f"fastopt: OpenMP enabled ({' '.join(omp_compile)})")
                compile_args, link_args = omp_compile, omp_link
            elif _env_flag("FASTOPT_FAIL_NO_OPENMP"):
                raise RuntimeError(
                    "fastopt: the compiler cannot build OpenMP code and FASTOPT_FAIL_NO_OPENMP "
                    "is set. Install an OpenMP runtime (libgomp or libomp) or unset the variable."
                )
            else:
                warnings.warn(
                    "fastopt: the compiler cannot build OpenMP code; building SERIAL kernels. "
                    "Set FASTOPT_FAIL_NO_OPENMP=1 to make this an error.",
                    stacklevel=1,
                )
        if self.compiler.compiler_type != "msvc":
            # -O3 for loop vectorisation; -fno-math-errno lets gcc vectorise sqrt (it only stops
            # libm from setting errno on a negative argument; results are unchanged). No
            # -ffast-math: it would change rounding and, via crtfastmath.o, the whole process.
            compile_args = ["-O3", "-fno-math-errno", *compile_args]
            if _env_flag("FASTOPT_NATIVE"):
                print("fastopt: FASTOPT_NATIVE is set, compiling for this CPU (-march=native)")
                # -ffp-contract=off: no fused multiply-adds, so results stay those of the
                # portable build (FMA contraction would change rounding).
                compile_args += ["-march=native", "-ffp-contract=off"]
        if self.compiler.compiler_type == "msvc":  # no AVX2 build there: baseline kernels only
            self.extensions = [e for e in self.extensions if e.name not in AVX2_MODULES]
        for ext in self.extensions:
            ext.extra_compile_args = [*ext.extra_compile_args, *compile_args]
            ext.extra_link_args = [*ext.extra_link_args, *link_args]
            if ext.name in EXACT_MODULES and self.compiler.compiler_type != "msvc":
                # Bitwise the Python schedulers' numbers: no multiply-add fused (aarch64, -mfma).
                ext.extra_compile_args += ["-ffp-contract=off"]
            if ext.name in AVX2_MODULES:
                # Run-time dispatch target (fastopt/_kernels.pyx loads it on AVX2 CPUs only).
                # -ffp-contract=off: no FMA contraction, results stay those of the baseline.
                ext.extra_compile_args += ["-mavx2", "-ffp-contract=off"]
        super().build_extensions()


AVX2_MODULES = ("fastopt._kernels_avx2",)
EXACT_MODULES = ("fastopt._schedule",)


def _extensions():
    debug = _env_flag("FASTOPT_DEBUG_CYTHON")
    directives = {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": False,
        "cdivision": True,
        "initializedcheck": debug,
        "embedsignature": True,
    }
    include_dirs = [os.path.join(HERE, "src_c"), numpy.get_include()]
    # The C headers every module may include: a change to one rebuilds the modules (cythonize
    # tracks .pxd/.pxi itself, but not headers reached only through `cdef extern from`).
    headers = sorted(glob.glob(os.path.join("src_c", "*.h")))
    macros = [("NPY_NO_DEPRECATED_API", "NPY_1_25_API_VERSION")]
    extensions = [
        Extension(
            f"fastopt.{name}",
            [f"fastopt/{name}.pyx"],
            include_dirs=include_dirs,
            define_macros=macros,
            depends=headers,
        )
        for name in ("_openmp", "_fpenv", "_kernels", "_step", "_native", "_clip", "_loop",
                     "_batch", "_objectives", "_schedule", "_fastcall", "_lbfgs",
                     "_lbfgs_batch")
    ]
    if platform.machine().lower() in ("x86_64", "amd64"):
        extensions.append(Extension("fastopt._kernels_avx2", ["fastopt/_kernels_avx2.pyx"],
                                    include_dirs=include_dirs, define_macros=macros,
                                    depends=headers))
    return cythonize(extensions, compiler_directives=directives, include_path=["fastopt"])


setup(ext_modules=_extensions(), cmdclass={"build_ext": build_ext_openmp})
