"""Checking a model directory against its card and its kind, collecting every problem (card
fields, missing files, checksums, graphs that do not load, the kind's contract and its runs on
random inputs) instead of stopping at the first: a user bringing a model fixes them all in one
round. `check_artifact` (registration), the upload check process and `hanmo models check` all
come through here."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from app.errors import ContractViolation
from app.kinds.base import Graph, raise_problems
from app.kinds.catalog import KINDS
from app.registry.artifacts import file_problems
from app.registry.cards import Card, field_problem, parse_card
from app.runtime.sessions import load_graph


def load_each(
    directory: Path, card: Card, device: str, threads: int, spin: bool = False
) -> tuple[dict[str, Graph], list[str]]:
    """Load every graph (and side file) the card names; the problems of those that fail."""
    kind = KINDS[card.kind].graph
    problems = [
        f"graphs.{role}: a {card.kind} needs a graph with role {role!r} in card.json's graphs"
        for role in kind.roles
        if role not in card.graphs
    ]
    graphs: dict[str, Graph] = {}
    for role, spec in card.graphs.items():
        try:
            graphs[role] = load_graph(
                directory / spec.file,
                card.format,
                device,
                spec.inputs,
                spec.outputs,
                threads,
                spin,
            )
        except Exception as exc:  # corrupt or foreign files: a clear contract problem
            problems.append(f"graph {role!r} ({spec.file}) does not load: {exc}")
    side = getattr(kind, "side_graphs", None)  # side files a kind reads (a style atlas)
    if side is not None:
        try:
            graphs.update(side(directory, card))
        except Exception as exc:
            problems.append(f"the side files do not load: {exc}")
    return graphs, problems


def checked_graphs(
    directory: Path,
    card: Card,
    device: str,
    threads: int,
    verify_files: bool = False,
    spin: bool = False,
) -> dict[str, Graph]:
    """The card's graphs loaded and checked; ContractViolation listing every problem."""
    problems = file_problems(directory, card) if verify_files else []
    graphs, load_problems = load_each(directory, card, device, threads, spin)
    problems += load_problems
    problems += KINDS[card.kind].graph.problems(card.signature.as_dict(), graphs, card.data)
    raise_problems(problems)
    return graphs


def directory_problems(directory: Path) -> tuple[Card | None, list[str]]:
    """Every problem of a model directory on CPU (what `hanmo models check` prints)."""
    if not (directory / "card.json").is_file():
        return None, [f"{directory}/card.json is missing: a model directory holds its card"]
    text = (directory / "card.json").read_text()
    signature_problems: list[str] = []
    try:
        card = parse_card(text)
    except ValidationError as exc:
        try:  # the fields every card has first: a wrong kind hides none of them
            card = Card.model_validate_json(text)
        except ValidationError as common:
            return None, [field_problem(error) for error in common.errors()]
        # Only the kind's signature is wrong: check the rest too, with the card read as given
        # (the kind's own checks word its field problems with their fix, and go on to the graphs).
        signature_problems = [field_problem(error) for error in exc.errors()]
    try:
        checked_graphs(directory, card, "cpu", 1, verify_files=True)
    except ContractViolation as exc:
        found = list(exc.extensions.get("problems", [exc.detail]))
        named = " ".join(found)
        return card, found + [p for p in signature_problems if _field_of(p) not in named]
    return card, signature_problems


def _field_of(problem: str) -> str:
    """`signature.sample_shape` of "card.json field `signature.sample_shape.1`: ..."."""
    return ".".join(problem.partition("`")[2].partition("`")[0].split(".")[:2])
