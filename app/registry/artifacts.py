"""Artifacts addressed by fsspec URL: a local directory by default, s3:// for many machines.
Workers read local artifacts in place and copy remote ones into a cache keyed by digest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import fsspec

from app.errors import ArtifactCorrupt, InvalidInput, raise_listed
from app.registry.cards import Card, sha256_file


def file_problems(directory: Path, card: Card) -> list[str]:
    """Every file the card names that is missing or whose sha256 differs from the card's."""
    problems = []
    for name, expected in card.checksums().items():
        path = directory / name
        if ".." in Path(name).parts or not path.is_file():
            problems.append(f"file {name!r} named in card.json is missing: add it beside card.json")
        elif (actual := sha256_file(path)) != expected:
            problems.append(
                f"{name}: sha256 is {actual}, card says {expected} — put the file's sha256 "
                "in card.json (or the file the card was written for beside it)"
            )
    return problems


def raise_corrupt(problems: list[str]) -> None:
    """One ArtifactCorrupt whose detail lists every problem (a lone one as it is)."""
    raise_listed(ArtifactCorrupt, problems)


def verify_directory(directory: Path, card: Card) -> None:
    """ArtifactCorrupt listing every file the card names that is missing or differs."""
    raise_corrupt(file_problems(directory, card))


def refuse_links(directory: Path) -> None:
    """InvalidInput naming the first symbolic or hard link under a directory to register: its
    files must be its own, not pointers that may lead out of the register root (a hard link
    to a file elsewhere on the same file system is one more name for that file: a file with
    more than one name is refused). Checked before anything is copied (the directory itself
    was resolved into the root by the caller)."""
    for parent, folders, files in os.walk(directory):
        for name in sorted([*folders, *files]):
            path = Path(parent) / name
            if path.is_symlink():
                what = "a symbolic link"
            elif name in files and path.stat().st_nlink > 1:
                what = "a hard link (the file has other names)"
            else:
                continue
            raise InvalidInput(
                f"{path.relative_to(directory)} is {what}: a registered directory must hold "
                "its files itself",
                errors=[{"field": "uri", "file": str(path.relative_to(directory))}],
            )


def store(directory: Path, card: Card, root: str, version: int) -> str:
    """Copy a verified model directory into the artifact store; return its URL."""
    url = f"{root.rstrip('/')}/{card.name}/{version}"
    fs, path = fsspec.core.url_to_fs(url)
    fs.makedirs(path, exist_ok=True)
    for name in [*card.checksums(), "card.json"]:
        fs.put_file(str(directory / name), f"{path}/{name}")
    return url


def remove(uri: str, root: str) -> None:
    """Remove an artifact directory, only ever one inside the artifact root (best effort)."""
    root = root.rstrip("/")
    if not uri or not uri.startswith(root + "/") or ".." in uri.split("/"):
        return
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception:  # a leftover directory is harmless; never fail the caller for it
        pass


def local_path(url: str, card: Card, cache_dir: Path) -> Path:
    """A local directory holding the artifact: in place when local, else a verified cache copy."""
    fs, path = fsspec.core.url_to_fs(url)
    if "file" in _protocols(fs):
        return Path(path)
    target = cache_dir / card.digest()
    if not (target / ".complete").exists():
        staging = target.with_suffix(".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in card.checksums():
            fs.get_file(f"{path}/{name}", str(staging / name))
        verify_directory(staging, card)
        (staging / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _protocols(fs: fsspec.AbstractFileSystem) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
