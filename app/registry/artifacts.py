"""Artifacts addressed by fsspec URL: a local directory by default, s3:// for many machines.
Workers read local artifacts in place and copy remote ones into a cache keyed by digest.

The registry stores a version's location relative to the artifact root (`name/version`) and
every process resolves it against its own `HANMO_ARTIFACT_ROOT` (`located`), so a registry
database moves between hosts whose roots differ. An absolute URL or path (rows written before,
or by hand) stays as it is. Every fsspec file system here comes from `open_fs`, which passes
the HANMO_S3_* settings to s3:// URLs (`storage_options`)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import fsspec

from app.errors import ArtifactCorrupt, InvalidInput, raise_listed
from app.registry.cards import Card, sha256_file
from app.settings import Settings

S3_PROTOCOLS = ("s3", "s3a")


def storage_options(url: str, settings: Settings) -> dict[str, Any]:
    """fsspec's storage options for `url`: for s3:// the HANMO_S3_* settings that are set
    (s3fs's `endpoint_url`, `key`, `secret`, region); none for other protocols. A setting left
    unset is botocore's to find (AWS_* variables, its config files, instance roles)."""
    protocol, _ = fsspec.core.split_protocol(url)
    if protocol not in S3_PROTOCOLS:
        return {}
    options: dict[str, Any] = {}
    if settings.s3_endpoint_url:
        options["endpoint_url"] = settings.s3_endpoint_url
    if settings.s3_access_key_id:
        options["key"] = settings.s3_access_key_id
    if secret := settings.s3_secret_access_key.get_secret_value():
        options["secret"] = secret
    if settings.s3_region:
        options["client_kwargs"] = {"region_name": settings.s3_region}
    return options


def open_fs(url: str, settings: Settings) -> tuple[fsspec.AbstractFileSystem, str]:
    """The file system and path of an absolute URL (or local path), opened with its storage
    options: every access to artifacts and register roots goes through here."""
    fs, path = fsspec.core.url_to_fs(url, **storage_options(url, settings))
    return fs, path


def is_absolute(uri: str) -> bool:
    """A URL with a scheme or an absolute local path, as opposed to one under the root."""
    return "://" in uri or uri.startswith("/")


def located(uri: str, settings: Settings) -> str:
    """Where a stored artifact URI is on this host: an absolute one as it is, a relative one
    (`name/version`) under this process's artifact root."""
    if not uri or is_absolute(uri):
        return uri
    return f"{settings.resolved_artifact_root().rstrip('/')}/{uri}"


def relative_uri(card: Card, version: int) -> str:
    """What the registry stores for a version's files: its place under the artifact root."""
    return f"{card.name}/{version}"


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


def store(directory: Path, card: Card, settings: Settings, version: int) -> str:
    """Copy a verified model directory into the artifact store; return the URI to record
    (relative to the artifact root)."""
    uri = relative_uri(card, version)
    fs, path = open_fs(located(uri, settings), settings)
    fs.makedirs(path, exist_ok=True)
    for name in [*card.checksums(), "card.json"]:
        fs.put_file(str(directory / name), f"{path}/{name}")
    return uri


def remove(uri: str, settings: Settings) -> None:
    """Remove an artifact directory, only ever one inside the artifact root (best effort)."""
    root = settings.resolved_artifact_root().rstrip("/")
    url = located(uri, settings)
    if not url or not url.startswith(root + "/") or ".." in url.split("/"):
        return
    try:
        fs, path = open_fs(url, settings)
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except Exception:  # a leftover directory is harmless; never fail the caller for it
        pass


def local_path(uri: str, card: Card, settings: Settings, cache_dir: Path) -> Path:
    """A local directory holding the artifact at a stored URI: in place when local, else a
    verified copy in `cache_dir`."""
    fs, path = open_fs(located(uri, settings), settings)
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
