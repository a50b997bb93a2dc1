"""Calibration feedback: observed outcomes for answered rows, scored against the draws the
model produced for them (kept in Redis for the retention period), stored per version; and
each version's running calibration from all of them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hanmo_client.schemas import FeedbackRequest, Observation
from sqlalchemy.orm import Session, sessionmaker

from app.errors import InvalidInput, PredictionNotFound
from app.kinds.predictive import calibration
from app.kinds.predictive.calibration import Score
from app.queue.client import JobQueue
from app.queue.results import Outcome
from app.registry import repository
from app.registry.repository import FeedbackRow
from app.registry.service import ServedVersion
from app.services.backends import transact

Kept = tuple[dict[str, Any], Outcome]  # job meta, its outcome
Scored = tuple[Observation, dict[str, Any], Score]


async def record(
    queue: JobQueue, sessions: sessionmaker[Session], name: str, request: FeedbackRequest
) -> dict[str, Any]:
    """Score every observation; store all of them or none (any bad one is a 4xx)."""
    kept = await _kept_predictions(queue, name, {o.prediction_id for o in request.observations})
    scored = [
        (o, kept[o.prediction_id][0], _score(o, *kept[o.prediction_id]))
        for o in request.observations
    ]
    return await transact(sessions, _store, name, scored)


async def _kept_predictions(queue: JobQueue, name: str, ids: set[str]) -> dict[str, Kept]:
    kept: dict[str, Kept] = {}
    for prediction_id in sorted(ids):
        fields, outcome = await queue.status(prediction_id, missing=PredictionNotFound)
        meta = json.loads(fields["meta"])
        if meta.get("kind") != "predictive" or meta.get("model") != name:
            raise PredictionNotFound(f"no prediction {prediction_id!r} of model {name!r}")
        if outcome is None or not outcome.ok:
            raise PredictionNotFound(f"prediction {prediction_id!r} has no answered rows")
        kept[prediction_id] = (meta, outcome)
    return kept


def _score(observation: Observation, meta: dict[str, Any], outcome: Outcome) -> Score:
    assert outcome.tensors is not None
    row, draws = observation.row, int(meta["draws"])
    where = {"errors": [{"field": "observations", "row": row}]}
    if row >= int(meta["n"]):
        raise InvalidInput(f"prediction {observation.prediction_id} has {meta['n']} rows", **where)
    if meta["task"] == "regression":
        if observation.value is None:
            raise InvalidInput("regression feedback needs `value`", **where)
        means, variances = outcome.tensors["mean"][row, :draws], outcome.tensors["var"][row, :draws]
        if means.shape[-1] != 1:
            raise InvalidInput("feedback supports single-target regression", **where)
        return calibration.score_regression(means[:, 0], variances[:, 0], observation.value)
    return calibration.score_classification(
        outcome.tensors["logits"][row, :draws], _label_index(observation, meta, where)
    )


def _label_index(observation: Observation, meta: dict[str, Any], where: dict[str, Any]) -> int:
    classes: list[str] = meta.get("classes") or []
    label = observation.label
    if isinstance(label, str) and label in classes:
        return classes.index(label)
    if isinstance(label, int) and 0 <= label < len(classes):
        return label
    raise InvalidInput(f"`label` must be a class index or one of {classes}", **where)


def _store(session: Session, name: str, scored: list[Scored]) -> dict[str, Any]:
    """Store the observations not fed back before (in one transaction, the caller's)."""
    model = repository.get_model(session, name)
    assert model is not None  # a prediction of this model exists
    seen = repository.existing_feedback(session, [(o.prediction_id, o.row) for o, _, _ in scored])
    fresh, duplicates = [], 0
    for observation, meta, score in scored:
        key = (observation.prediction_id, observation.row)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        version = repository.get_version(session, model.id, int(meta["version"]))
        assert version is not None
        fresh.append(_row(version.id, observation, meta, score))
    repository.add_feedback(session, fresh)
    return {
        "accepted": len(fresh),
        "duplicates": duplicates,
        "versions": sorted({int(meta["version"]) for _, meta, _ in scored}),
        "scores": [
            {"prediction_id": o.prediction_id, "row": o.row, "nll": s.nll, "pit": s.pit}
            for o, _, s in scored
        ],
    }


def _row(
    version_id: int, observation: Observation, meta: dict[str, Any], score: Score
) -> FeedbackRow:
    observed = (
        observation.value if observation.value is not None else _label_value(observation, meta)
    )
    return FeedbackRow(
        version_id=version_id,
        prediction_id=observation.prediction_id,
        row=observation.row,
        observed=float(observed),
        nll=score.nll,
        pit=score.pit,
        confidence=score.confidence,
        correct=score.correct,
    )


def _label_value(observation: Observation, meta: dict[str, Any]) -> float:
    classes: list[str] = meta.get("classes") or []
    label = observation.label
    return float(classes.index(label) if isinstance(label, str) else label or 0)


def summary(session: Session, served: ServedVersion) -> dict[str, Any]:
    """Running calibration of one version from every observation fed back for it."""
    model = repository.get_model(session, served.model)
    assert model is not None
    version = repository.get_version(session, model.id, served.version)
    assert version is not None
    rows = repository.feedback_scores(session, version.id)
    nll = np.array([r[0] for r in rows], dtype=np.float64)
    task = served.card.get("signature", {}).get("task")
    if task == "regression":
        stats = calibration.summarize_regression_feedback(
            np.array([r[1] for r in rows], dtype=np.float64), nll
        )
    else:
        stats = calibration.summarize_classification_feedback(
            np.array([r[2] for r in rows], dtype=np.float64),
            np.array([bool(r[3]) for r in rows]),
            nll,
        )
    return {"model": served.model, "version": served.version, "task": task, **stats}
