"""Artifact ingest: the files of a new version, from an upload's parts or from a directory
named by URI, streamed into the artifact store with every file's sha256 checked against the
card. A URI must lie inside a configured register root (the allow-list); one that chains file
systems (`::`) or a folder holding symbolic links is refused before anything is copied."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

from pydantic import ValidationError

from app.errors import InvalidInput, PayloadTooLarge
from app.registry import artifacts
from app.registry.cards import Card, parse_card
from app.settings import Settings

CHUNK = 1 << 20
MAX_CARD_BYTES = 1 << 20
MAX_ARTIFACT_FILES = 32

Opener = Callable[[str], AbstractContextManager[IO[bytes]]]


def card_from_bytes(raw: bytes) -> Card:
    """card.json's bytes as its kind's Card; 413 over 1 MiB, 422 naming the first invalid
    field."""
    if len(raw) > MAX_CARD_BYTES:
        raise PayloadTooLarge("card.json is over 1 MiB")
    try:
        return parse_card(raw)
    except ValidationError as exc:
        raise InvalidInput(f"card.json is not a valid card: {exc.errors()[0]['msg']}") from exc


def expected_digest(sha256: str | None) -> str | None:
    """The digest a request expects (empty: none), 422 unless 64 lowercase hex digits."""
    if not sha256:
        return None
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise InvalidInput("sha256 must be 64 lowercase hex digits")
    return sha256


def uploaded(card: Card, parts: Sequence[tuple[str, IO[bytes]]]) -> Opener:
    """The upload's file parts by name, refused (422) unless they are exactly, by plain file
    name, the files the card names."""
    names = [name for name, _ in parts]
    if any(not name or Path(name).name != name for name in names):
        raise InvalidInput("each file part needs a plain file name (no directories)")
    wanted = set(card.checksums())
    if sorted(names) != sorted(wanted):
        missing, extra = sorted(wanted - set(names)), sorted(set(names) - wanted)
        raise InvalidInput(
            "the files must be exactly those the card names"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
            + ("; duplicates" if len(names) != len(set(names)) else "")
        )
    by_name = dict(parts)
    return lambda name: nullcontext(by_name[name])


def allowed_uri(uri: str, roots: list[str]) -> str:
    """The URI if it lies inside one of the register `roots`, else 422."""
    if "::" in unquote(uri):  # fsspec would chain file systems (`simplecache::s3://…`)
        raise InvalidInput("the URI may not chain file systems with `::`")
    parts = urlsplit(uri)
    if ".." in unquote(parts.path).split("/") or "\\" in uri:
        raise InvalidInput("the URI may not contain `..`")
    if parts.scheme in ("", "file"):
        local = _local_inside(parts.scheme, parts.netloc, unquote(parts.path), roots)
        if local is not None:
            return local
    else:
        for root in roots:
            if "://" in root and uri.startswith(root.rstrip("/") + "/"):
                return uri
    raise InvalidInput(f"{uri!r} is outside the allowed register roots")


def _local_inside(scheme: str, host: str, raw_path: str, roots: list[str]) -> str | None:
    """`file://` and the resolved path when it lies inside a local root (and holds no link)."""
    if scheme == "file" and host not in ("", "localhost"):
        raise InvalidInput("file:// URIs must name a local path")
    path = Path(raw_path).resolve()
    for root in roots:
        if "://" in root and not root.startswith("file://"):
            continue
        base = Path(unquote(urlsplit(root).path) if "://" in root else root).resolve()
        if path.is_relative_to(base):
            artifacts.refuse_links(path)
            return f"file://{path}"
    return None


def remote_card(uri: str, settings: Settings) -> Card:
    """The card.json of the artifact directory at `uri` (422 when there is none to read)."""
    try:
        fs, path = artifacts.open_fs(uri, settings)
        raw = fs.cat_file(f"{path.rstrip('/')}/card.json")
    except Exception as exc:  # not there, not readable
        raise InvalidInput(f"no readable card.json under {uri!r}") from exc
    return card_from_bytes(raw)


def remote(uri: str, settings: Settings) -> Opener:
    """The files of an artifact directory named by URI; one that cannot be read is a 422."""
    fs, path = artifacts.open_fs(uri, settings)

    def open_source(name: str) -> AbstractContextManager[IO[bytes]]:
        try:
            return fs.open(f"{path.rstrip('/')}/{name}", "rb")  # type: ignore[no-any-return]
        except OSError as exc:
            raise InvalidInput(f"a file the card names cannot be read: {exc}") from exc

    return open_source


def store_checked(uri: str, card: Card, open_source: Opener, settings: Settings) -> None:
    """Stream every file the card names from `open_source` into the artifact store at `uri`
    (stored form: relative to the root, or absolute) (`copy_checked`), then write the card.
    Uploads and registrations by URI both store through here."""
    fs, path = artifacts.open_fs(artifacts.located(uri, settings), settings)
    fs.makedirs(path, exist_ok=True)
    copy_checked(card, open_source, lambda name: fs.open(f"{path}/{name}", "wb"))
    with fs.open(f"{path}/card.json", "wb") as out:
        out.write(card.model_dump_json(indent=2).encode())


def check_only(card: Card, open_source: Opener) -> None:
    """Hash every file the card names from `open_source`, storing nothing (a reused upload)."""
    copy_checked(card, open_source, _nowhere)


def copy_checked(card: Card, open_source: Opener, open_target: Opener) -> None:
    """Copy every file the card names from `open_source` to `open_target`, hashing as it
    goes: ArtifactCorrupt listing every file whose sha256 differs from the card's."""
    for name in card.checksums():
        if "/" in name or name in ("", ".", ".."):
            raise InvalidInput(f"the card names a file outside its directory: {name!r}")
    problems = []
    for name, expected in card.checksums().items():
        digest = hashlib.sha256()
        with open_source(name) as source, open_target(name) as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected:
            problems.append(f"{name}: sha256 is {digest.hexdigest()}, the card says {expected}")
    artifacts.raise_corrupt(problems)


def _nowhere(_: str) -> AbstractContextManager[IO[bytes]]:
    return open(os.devnull, "wb")
