"""How the C kernel is compiled: shared by w2v.native (on first use) and setup.py (for wheels).

Compiled and linked in two steps on purpose: linking a shared library with -ffast-math
makes gcc add crtfastmath.o, which switches the whole process to flush-denormals-to-zero
when the library loads (every numpy and torch computation in it would change). The
kernel itself is compiled with -ffast-math; the link is plain.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

COMPILE_FLAGS = ["-O3", "-ffast-math", "-fPIC", "-std=c99"]
NATIVE_FLAGS = ["-march=native"]  # compiled on first use for this very CPU
# Portable builds for wheels: name -> extra flags, per platform.machine(), best first.
PORTABLE_LEVELS = {"x86_64": {"x86-64-v3": ["-march=x86-64-v3"], "x86-64": ["-march=x86-64"]}}
# CPU flags (/proc/cpuinfo) each portable level needs.
LEVEL_NEEDS = {"x86-64-v3": {"avx2", "fma", "bmi2", "movbe"}, "x86-64": set(), "default": set()}


def compile_kernel(compiler: str, source: Path, target: Path, extra: list[str]) -> None:
    """Compile `source` into the shared library `target` (written whole, or not at all)."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj, lib = Path(tmp) / "kernel.o", Path(tmp) / "kernel.so"
        subprocess.run([compiler, *COMPILE_FLAGS, *extra, "-c", "-o", str(obj), str(source)],
                       check=True, capture_output=True, text=True)
        subprocess.run([compiler, "-shared", *[f for f in extra if f.startswith("-fsanitize")], "-o", str(lib),
                        str(obj), "-lm"], check=True, capture_output=True, text=True)
        os.replace(lib, target)
