"""Refuses to load core_rs on a CPU it was not built for. Imported first by
the package, before the extension module."""

from __future__ import annotations

import os
import platform
import sys


def check_cpu() -> None:
    """core_rs is compiled for x86-64-v3 (AVX2, FMA): on an older x86 CPU the
    interpreter would die on an illegal instruction, so refuse the import
    with instructions instead."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return
    if os.environ.get("CORE_RS_SKIP_CPU_CHECK"):
        return
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split() for line in f if line.startswith("flags")), [])
    except OSError:
        return
    missing = {"avx2", "fma", "bmi2"} - set(flags)
    if flags and missing:
        raise ImportError(
            f"core_rs was built for x86-64-v3 but this CPU lacks {sorted(missing)}; rebuild "
            "it portably with RUSTFLAGS='-C target-cpu=x86-64' make core, then set "
            "CORE_RS_SKIP_CPU_CHECK=1"
        )


check_cpu()
