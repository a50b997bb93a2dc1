"""Artifact ingest without a server: the register-root allow-list, upload parts by name, and
copies that hash every file and name every one that differs from the card."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.errors import ArtifactCorrupt, InvalidInput, PayloadTooLarge
from app.registry import ingest
from app.registry.cards import Card, read_card


def test_a_uri_inside_a_root_is_allowed_and_resolved(tmp_path: Path) -> None:
    (tmp_path / "root" / "v2").mkdir(parents=True)
    allowed = ingest.allowed_uri(f"file://{tmp_path}/root/v2", [str(tmp_path / "root")])
    assert allowed == f"file://{(tmp_path / 'root' / 'v2').resolve()}"
    remote = ingest.allowed_uri("s3://models/team/v2", ["s3://models/team"])
    assert remote == "s3://models/team/v2"


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("file:///elsewhere/v2", "outside the allowed register roots"),
        ("s3://models/teammate/v2", "outside the allowed register roots"),
        ("{root}/../v2", "`..`"),
        ("simplecache::{root}/v2", "`::`"),
        ("file://host{root}/v2", "local path"),
    ],
)
def test_a_uri_outside_the_roots_is_refused(tmp_path: Path, uri: str, says: str) -> None:
    roots = [str(tmp_path), "s3://models/team"]
    with pytest.raises(InvalidInput, match=says):
        ingest.allowed_uri(uri.format(root=tmp_path), roots)


def test_upload_parts_must_be_exactly_the_cards_files(tiny_dir: Path) -> None:
    card = read_card(tiny_dir)
    with pytest.raises(InvalidInput, match="plain file name"):
        ingest.uploaded(card, [("../model.onnx", io.BytesIO())])
    with pytest.raises(InvalidInput, match=r"missing \['model.onnx'\]; unexpected \['x.bin'\]"):
        ingest.uploaded(card, [("x.bin", io.BytesIO())])
    opener = ingest.uploaded(card, [("model.onnx", io.BytesIO(b"bytes"))])
    with opener("model.onnx") as part:
        assert part.read() == b"bytes"


def two_file_card(tiny_dir: Path) -> Card:
    raw = json.loads((tiny_dir / "card.json").read_text())
    raw["files"] = {"notes.txt": "0" * 64}
    return ingest.card_from_bytes(json.dumps(raw).encode())


def test_a_copy_names_every_file_whose_sha256_differs(tiny_dir: Path) -> None:
    card = two_file_card(tiny_dir)
    sources = {"model.onnx": b"not the graph", "notes.txt": b"not the notes"}
    copied: dict[str, io.BytesIO] = {}

    def target(name: str) -> io.BytesIO:
        copied[name] = io.BytesIO()
        copied[name].close = lambda: None  # type: ignore[method-assign]
        return copied[name]

    with pytest.raises(ArtifactCorrupt) as raised:
        ingest.copy_checked(card, lambda name: io.BytesIO(sources[name]), target)
    problems = raised.value.extensions["problems"]
    assert [p.split(":")[0] for p in problems] == ["model.onnx", "notes.txt"]
    assert raised.value.detail.startswith("2 problems: (1) model.onnx: sha256 is")
    assert {name: f.getvalue() for name, f in copied.items()} == sources


def test_a_card_over_a_mebibyte_or_invalid_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a valid card"):
        ingest.card_from_bytes(b'{"name": "x"}')
    with pytest.raises(PayloadTooLarge, match="over 1 MiB"):
        ingest.card_from_bytes(b" " * (ingest.MAX_CARD_BYTES + 1))
