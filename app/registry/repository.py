"""All SQL of the registry. Functions take a Session; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, union
from sqlalchemy.orm import Session

from app.registry.tables import (
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


def get_version(session: Session, model_id: int, version: int) -> ModelVersion | None:
    query = select(ModelVersion).where(
        ModelVersion.model_id == model_id, ModelVersion.version == version
    )
    return session.scalars(query).first()


def list_versions(session: Session, model_id: int) -> Sequence[ModelVersion]:
    query = select(ModelVersion).where(ModelVersion.model_id == model_id)
    return session.scalars(query.order_by(ModelVersion.version)).all()


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


def add_feedback(session: Session, rows: list[PredictionFeedback]) -> None:
    session.add_all(rows)
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
