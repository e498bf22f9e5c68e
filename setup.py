"""Builds the C kernel into the wheel, so an installed w2v needs no compiler at run time.

`pip wheel .` / `pip install .` compile w2v/csrc/kernel.c into w2v/prebuilt/ for portable
CPU levels (x86-64: baseline and x86-64-v3, i.e. AVX2 + FMA; elsewhere: the compiler's
default); w2v.native picks the best one the CPU runs. A source checkout (or an editable
install) compiles the kernel on first use with -march=native instead. Without a compiler at
build time the wheel simply carries no prebuilt kernel and w2v compiles on first use.
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

sys.path.insert(0, str(Path(__file__).resolve().parent / "w2v"))
from native_build import PORTABLE_LEVELS, compile_kernel  # noqa: E402  (no torch needed at build time)


class BuildKernel(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not compiler:
            print("w2v: no C compiler: the wheel carries no prebuilt kernel", file=sys.stderr)
            return
        out = Path(self.build_lib) / "w2v" / "prebuilt"
        out.mkdir(parents=True, exist_ok=True)
        for level, flags in PORTABLE_LEVELS.get(platform.machine(), {"default": []}).items():
            try:
                compile_kernel(compiler, Path("w2v/csrc/kernel.c"), out / f"kernel-{level}.so", flags)
            except (subprocess.CalledProcessError, OSError) as e:
                print(f"w2v: building the {level} kernel failed ({e}); skipped", file=sys.stderr)


class PlatformDistribution(Distribution):
    """The wheel holds a compiled library: tag it for this platform, not py3-none-any."""

    def has_ext_modules(self) -> bool:
        return True


setup(cmdclass={"build_py": BuildKernel}, distclass=PlatformDistribution)
