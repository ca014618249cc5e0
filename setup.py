"""Build the compiled datapath `sriov._fastpath` (metadata lives in pyproject.toml).

SRIOV_DEBUG_BUILD=1 turns bounds and wraparound checks back on for a sanitiser run.
"""

import os

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("SRIOV_DEBUG_BUILD") == "1"

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "embedsignature": True,
}

extensions = [
    Extension(
        "sriov._fastpath",
        ["sriov/_fastpath.pyx"],
        depends=["sriov/_fp_simd.h"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O0", "-g"] if DEBUG else ["-O3"],
        extra_link_args=[] if DEBUG else ["-s"],  # strip the shipped .so (symbols only in debug builds)
    )
]

setup(ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, language_level=3))
