"""One line naming the machine a figure comes from: CPU model, cores, ISA, GPU (if any).

Read from ``/proc/cpuinfo`` (Linux) and ``nvidia-smi`` (when present); every bench prints it
before its figures, so a number never travels without its machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

# the ISA extensions that change what onnxruntime / numpy kernels can use, most capable first
_ISA = [
    ("amx_tile", "AMX"),
    ("avx512_vnni", "AVX-512 VNNI"),
    ("avx512_bf16", "AVX-512 BF16"),
    ("avx512f", "AVX-512"),
    ("avx_vnni", "AVX-VNNI"),
    ("avx2", "AVX2"),
    ("neon", "NEON"),
    ("asimd", "NEON"),
]


def cpu_description(cpuinfo: str | None = None) -> str:
    """'AMD EPYC, 2 cores, AVX2 + AVX-512 + AVX-512 VNNI' (from /proc/cpuinfo's text)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.is_file() else ""
    model, flags, processors = "", set(), 0
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "processor":
            processors += 1
        elif key in ("model name", "Model", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    cores = processors or os.cpu_count() or 0
    isa = list(dict.fromkeys(name for flag, name in reversed(_ISA) if flag in flags))
    return f"{model}, {cores} cores, {' + '.join(isa) if isa else 'no AVX2/AVX-512 listed'}"


def gpu_description() -> str:
    """'NVIDIA H200 (driver 580.x)' per GPU, or 'no GPU' when nvidia-smi is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return "no GPU"
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "no GPU (nvidia-smi failed)"
    gpus = [f"{name.strip()} (driver {driver.strip()})" for name, _, driver in (line.partition(",") for line in out.splitlines() if line.strip())]
    return ", ".join(gpus) or "no GPU"


def machine_line() -> str:
    """``machine: <CPU>; <GPU>`` for the top of a bench's output."""
    return f"machine: {cpu_description()}; {gpu_description()}"
