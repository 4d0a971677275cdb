"""The locks (requirements.lock, requirements-gpu.lock) still satisfy pyproject.toml: every
dependency the project declares is pinned, for each supported Python, to a version inside its
range, with hashes. A range edited in pyproject.toml without `make lock` fails here (and so in CI)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SUPPORTED_PYTHONS = ["3.10", "3.11", "3.12"]
LOCKS = {"requirements.lock": ["dev"], "requirements-gpu.lock": ["dev", "gpu"]}


def read_lock(path: Path) -> list[tuple[str, Version, Marker | None, int]]:
    """(name, version, marker, number of hashes) for each pin of a `uv pip compile` lock."""
    pins = []
    entries = re.split(r"\n(?=[A-Za-z0-9])", path.read_text(encoding="utf-8"))
    for entry in entries:
        head = entry.split("\\", 1)[0].strip()
        if not head or head.startswith("#"):
            continue
        requirement = Requirement(head)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path.name}: {head} is not an exact pin"
        pins.append((canonicalize_name(requirement.name), Version(spec.version), requirement.marker, entry.count("--hash=sha256:")))
    return pins


def declared(extras: list[str]) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return requirements


def environment(python: str) -> dict[str, str]:
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
@pytest.mark.parametrize("python", SUPPORTED_PYTHONS)
def test_lock_satisfies_pyproject(lock_name: str, python: str) -> None:
    pins = read_lock(ROOT / lock_name)
    env = environment(python)
    active = {}
    for name, version, marker, hashes in pins:
        if marker is None or marker.evaluate(env):
            assert name not in active, f"{lock_name}: {name} pinned twice for Python {python}"
            assert hashes > 0, f"{lock_name}: {name}=={version} has no hash"
            active[name] = version
    problems = []
    for requirement in declared(LOCKS[lock_name]):
        if requirement.marker is not None and not requirement.marker.evaluate(env):
            continue
        name = canonicalize_name(requirement.name)
        if name not in active:
            problems.append(f"{requirement} is not in the lock")
        elif not requirement.specifier.contains(active[name], prereleases=True):
            problems.append(f"{requirement} but the lock pins {active[name]}")
    assert not problems, f"{lock_name} (Python {python}) no longer satisfies pyproject.toml — run `make lock`: " + "; ".join(problems)


def test_the_running_environment_is_the_lock() -> None:
    """What this test run imports is what the lock pins (installed by `make test`, not by hand)."""
    from importlib.metadata import PackageNotFoundError, version

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    if python not in SUPPORTED_PYTHONS:
        pytest.skip(f"Python {python} is outside the locked range {SUPPORTED_PYTHONS}")
    env = environment(python)
    gpu_installed = True
    try:
        version("nvidia-cudnn-cu13" if python != "3.10" else "nvidia-cudnn-cu12")
    except PackageNotFoundError:
        gpu_installed = False
    lock_name = "requirements-gpu.lock" if gpu_installed else "requirements.lock"
    mismatched = []
    for name, pinned, marker, _ in read_lock(ROOT / lock_name):
        if marker is not None and not marker.evaluate(env):
            continue
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            mismatched.append(f"{name} missing (lock: {pinned})")
            continue
        if installed != pinned:
            mismatched.append(f"{name} {installed} (lock: {pinned})")
    if mismatched and Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip(f"not running from the project's .venv ({sys.prefix}): " + "; ".join(mismatched[:3]))
    assert not mismatched, f"installed packages differ from {lock_name}: " + "; ".join(mismatched)
