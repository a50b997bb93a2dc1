"""Checking a model directory against its card and its kind, collecting every problem (card
fields, missing files, checksums, graphs that do not load, the kind's contract and its runs on
random inputs) instead of stopping at the first: a user bringing a model fixes them all in one
round. `check_artifact` (registration), the upload check process and `hanmo models check` all
come through here."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app.errors import ContractViolation
from app.registry.cards import Card, read_card, sha256_file
from app.runtime.kinds import KINDS
from app.runtime.kinds.base import raise_problems
from app.runtime.sessions import Graph, load_graph


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


def load_each(
    directory: Path, card: Card, device: str, threads: int
) -> tuple[dict[str, Graph], list[str]]:
    """Load every graph (and side file) the card names; the problems of those that fail."""
    kind = KINDS[card.kind]
    problems = [
        f"graphs.{role}: a {card.kind} needs a graph with role {role!r} in card.json's graphs"
        for role in kind.roles
        if role not in card.graphs
    ]
    graphs: dict[str, Graph] = {}
    for role, spec in card.graphs.items():
        try:
            graphs[role] = load_graph(
                directory / spec.file, card.format, device, spec.inputs, spec.outputs, threads
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
    directory: Path, card: Card, device: str, threads: int, verify_files: bool = False
) -> dict[str, Graph]:
    """The card's graphs loaded and checked; ContractViolation listing every problem."""
    problems = file_problems(directory, card) if verify_files else []
    graphs, load_problems = load_each(directory, card, device, threads)
    problems += load_problems
    problems += KINDS[card.kind].problems(card.signature, graphs, card.data)
    raise_problems(problems)
    return graphs


def directory_problems(directory: Path) -> tuple[Card | None, list[str]]:
    """Every problem of a model directory on CPU (what `hanmo models check` prints)."""
    if not (directory / "card.json").is_file():
        return None, [f"{directory}/card.json is missing: a model directory holds its card"]
    try:
        card = read_card(directory)
    except ValidationError as exc:
        return None, [_field_problem(error) for error in exc.errors()]
    try:
        checked_graphs(directory, card, "cpu", 1, verify_files=True)
    except ContractViolation as exc:
        return card, list(exc.extensions.get("problems", [exc.detail]))
    return card, []


def _field_problem(error: ErrorDetails) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "(the whole card)"
    return f"card.json field `{where}`: {error['msg']}"
