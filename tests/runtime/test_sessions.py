"""ONNX Runtime sessions as workers load them: idle intra-op threads sleep between calls unless
HANMO_ORT_SPIN asks them to spin (bench/README.md, "ONNX Runtime's spinning")."""

from __future__ import annotations

from typing import Any

import pytest

from app.registry.cards import read_card
from app.runtime.checks import checked_graphs
from app.settings import Settings
from tests.helpers import ROOT

MODEL = ROOT / "models" / "vae-digits" / "1"
SPIN = "session.intra_op.allow_spinning"


def spin_entry(graph: Any) -> str | None:
    options = graph._session.get_session_options()
    try:
        return str(options.get_session_config_entry(SPIN))
    except RuntimeError:  # not set: ONNX Runtime's default, spinning
        return None


@pytest.mark.parametrize(("spin", "entry"), [(False, "0"), (True, None)])
def test_spinning_follows_the_setting(spin: bool, entry: str | None) -> None:
    graphs = checked_graphs(MODEL, read_card(MODEL), "cpu", 2, spin=spin)
    assert {role: spin_entry(g) for role, g in graphs.items()} == dict.fromkeys(graphs, entry)


def test_spinning_is_off_by_default() -> None:
    assert Settings().ort_spin is False
