"""All SQL of the registry. Functions take a Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import delete, func, or_, select, union
from sqlalchemy.orm import Session

from app.registry.cards import Card
from app.registry.tables import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    PredictionFeedback,
    RegisteredModel,
    VersionStatus,
)


def get_model(session: Session, name: str) -> RegisteredModel | None:
    return session.scalars(select(RegisteredModel).where(RegisteredModel.name == name)).first()


def list_models(session: Session) -> Sequence[RegisteredModel]:
    return session.scalars(select(RegisteredModel).order_by(RegisteredModel.name)).all()


def page_models(session: Session, limit: int, offset: int) -> tuple[int, Sequence[RegisteredModel]]:
    """How many models there are, and a page of them by name."""
    total = session.scalar(select(func.count()).select_from(RegisteredModel)) or 0
    query = select(RegisteredModel).order_by(RegisteredModel.name).limit(limit).offset(offset)
    return total, session.scalars(query).all()


def create_model(session: Session, name: str, kind: str, description: str) -> RegisteredModel:
    model = RegisteredModel(name=name, kind=kind, description=description, tags={})
    session.add(model)
    session.flush()
    return model


def next_version_number(session: Session, model_id: int) -> int:
    current = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model_id)
    )
    return (current or 0) + 1


def find_version_by_sha(session: Session, model_id: int, sha256: str) -> ModelVersion | None:
    """The oldest version with this digest that still holds its files (a FAILED one keeps its
    row, not its files): what registering the same bytes again reuses."""
    query = select(ModelVersion).where(
        ModelVersion.model_id == model_id,
        ModelVersion.sha256 == sha256,
        ModelVersion.status != VersionStatus.FAILED,
    )
    return session.scalars(query.order_by(ModelVersion.version)).first()


def add_version(session: Session, version: ModelVersion) -> ModelVersion:
    session.add(version)
    session.flush()
    return version


def add_card_version(
    session: Session,
    model_id: int,
    number: int,
    card: Card,
    artifact_uri: str,
    status: VersionStatus,
    status_message: str = "",
) -> ModelVersion:
    """A version row for a card: its kind, format, digest, signature and card as given."""
    row = ModelVersion(
        model_id=model_id,
        version=number,
        kind=card.kind,
        format=card.format,
        artifact_uri=artifact_uri,
        sha256=card.digest(),
        signature=card.signature.as_dict(),
        card=card.model_dump(mode="json"),
        status=status,
        status_message=status_message,
    )
    return add_version(session, row)


def get_version(session: Session, model_id: int, version: int) -> ModelVersion | None:
    query = select(ModelVersion).where(
        ModelVersion.model_id == model_id, ModelVersion.version == version
    )
    return session.scalars(query).first()


def list_versions(session: Session, model_id: int) -> Sequence[ModelVersion]:
    query = select(ModelVersion).where(ModelVersion.model_id == model_id)
    return session.scalars(query.order_by(ModelVersion.version)).all()


def count_sharing_artifact(session: Session, uri: str, version_id: int) -> int:
    """How many versions other than `version_id` store their files at `uri`."""
    query = select(func.count()).where(
        ModelVersion.artifact_uri == uri, ModelVersion.id != version_id
    )
    return session.scalar(query) or 0


def aliases_holding(session: Session, version_id: int) -> list[str]:
    """The aliases that route to a version or are moving to it, by name."""
    query = select(ModelAlias.alias).where(
        or_(
            ModelAlias.version_id == version_id,
            ModelAlias.canary_version_id == version_id,
            ModelAlias.pending_version_id == version_id,
            ModelAlias.pending_canary_version_id == version_id,
        )
    )
    return sorted(session.scalars(query).all())


def get_alias(session: Session, model_id: int, alias: str) -> ModelAlias | None:
    query = select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
    return session.scalars(query.with_for_update()).first()


def get_alias_row(session: Session, model_id: int, alias: str) -> ModelAlias | None:
    """The alias row without a lock (reads on the request path)."""
    query = select(ModelAlias).where(ModelAlias.model_id == model_id, ModelAlias.alias == alias)
    return session.scalars(query).first()


def list_aliases(session: Session, model_id: int) -> dict[str, int]:
    """alias -> version number, for one model."""
    query = (
        select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelVersion.id == ModelAlias.version_id)
        .where(ModelAlias.model_id == model_id)
        .order_by(ModelAlias.alias)
    )
    return dict(session.execute(query).all())


def pending_alias_rows(session: Session) -> list[tuple[ModelAlias, str]]:
    """Every alias with a requested move, with its model's name."""
    query = (
        select(ModelAlias, RegisteredModel.name)
        .join(RegisteredModel, RegisteredModel.id == ModelAlias.model_id)
        .where(ModelAlias.pending_version_id.is_not(None))
    )
    return [(row, name) for row, name in session.execute(query).all()]


def alias_events(session: Session, model_id: int, alias: str) -> Sequence[AliasEvent]:
    """An alias's history, oldest first."""
    query = (
        select(AliasEvent)
        .where(AliasEvent.model_id == model_id, AliasEvent.alias == alias)
        .order_by(AliasEvent.id)
    )
    return session.scalars(query).all()


def delete_alias_events(session: Session, model_id: int) -> None:
    session.execute(delete(AliasEvent).where(AliasEvent.model_id == model_id))


def served_versions(
    session: Session, include_pending: bool = True
) -> Sequence[tuple[RegisteredModel, ModelVersion]]:
    """Every READY version an alias routes to (main or canary) and, with `include_pending`,
    every version a requested alias move needs: what workers load."""
    columns = [ModelAlias.version_id, ModelAlias.canary_version_id]
    if include_pending:
        columns += [ModelAlias.pending_version_id, ModelAlias.pending_canary_version_id]
    held = union(*(select(c).where(c.is_not(None)) for c in columns))
    query = (
        select(RegisteredModel, ModelVersion)
        .join(ModelVersion, ModelVersion.model_id == RegisteredModel.id)
        .where(ModelVersion.status == VersionStatus.READY, ModelVersion.id.in_(held))
        .order_by(RegisteredModel.name, ModelVersion.version)
    )
    return [(m, v) for m, v in session.execute(query).all()]


def existing_feedback(session: Session, pairs: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which (prediction id, row) pairs already have feedback."""
    ids = {prediction_id for prediction_id, _ in pairs}
    query = select(PredictionFeedback.prediction_id, PredictionFeedback.row).where(
        PredictionFeedback.prediction_id.in_(ids)
    )
    return {(p, r) for p, r in session.execute(query).all()} & set(pairs)


@dataclass(frozen=True, slots=True)
class FeedbackRow:
    """One observed outcome of an answered row, scored against that row's draws."""

    version_id: int
    prediction_id: str
    row: int
    observed: float
    nll: float
    pit: float | None
    confidence: float | None
    correct: bool | None


def add_feedback(session: Session, rows: list[FeedbackRow]) -> None:
    session.add_all(PredictionFeedback(**asdict(row)) for row in rows)
    session.flush()


def feedback_scores(
    session: Session, version_id: int
) -> Sequence[tuple[float, float | None, float | None, bool | None]]:
    """(nll, pit, confidence, correct) of every observation fed back for a version."""
    query = select(
        PredictionFeedback.nll,
        PredictionFeedback.pit,
        PredictionFeedback.confidence,
        PredictionFeedback.correct,
    ).where(PredictionFeedback.version_id == version_id)
    return [tuple(row) for row in session.execute(query).all()]  # type: ignore[misc]
