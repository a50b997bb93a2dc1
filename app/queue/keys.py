"""Every Redis key and channel hanmo uses, in one place.

Redis Cluster: every key a script touches shares one hash slot. A model version's stream, its
backlog and rates, its jobs, their results, rendered sheets, steps and idempotency keys carry
the version's tag, `{t}` with `t` = 8 hex digits of a hash of "model:version", and a job id
starts with its version's tag, so a job is found by its id alone (`job`, `result`). The keys
outside a tag (workers, streams, the registry generation, styles) are only ever read or
written one at a time. The same names serve a single Redis (6.2 or 7), where tags mean
nothing."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "hanmo"
TAG_HEX = 8  # a job id's leading hex digits: its version's tag
GROUP = "hanmo-workers"
WORKERS = f"{PREFIX}:workers"  # zset: worker id -> last heartbeat (epoch s)
REGISTRY_GENERATION = f"{PREFIX}:registry:generation"  # INCR on every registry change
CHECKS = f"{PREFIX}:checks"  # stream of uploaded versions waiting for a worker's check
DEAD_LETTER = f"{PREFIX}:dead-letter"  # stream of jobs failed for too many deliveries
STREAMS = f"{PREFIX}:streams"  # set: every stream a job was enqueued on (the stale sweep's list)
# zset: "model:version" of each pinned version no alias holds -> when a request last named it
# (epoch s); workers load the most recently wanted ones (app/worker/pinned.py)
WANTED = f"{PREFIX}:wanted"


STREAM_PATTERN = f"{PREFIX}:stream:*"  # every job stream (SCAN MATCH)


def version_tag(model: str, version: int) -> str:
    """The hash tag shared by one model version's keys (its slot in a Redis Cluster)."""
    return hashlib.blake2b(f"{model}:{version}".encode(), digest_size=TAG_HEX // 2).hexdigest()


def stream(model: str, version: int) -> str:
    """The stream of jobs for one served model version."""
    return f"{PREFIX}:stream:{{{version_tag(model, version)}}}:{model}:{version}"


def stream_version(stream_key: str) -> tuple[str, int]:
    """(model, version) of a stream key made by `stream`."""
    rest = stream_key.removeprefix(f"{PREFIX}:stream:")
    if rest.startswith("{"):
        rest = rest.partition("}:")[2]
    model, _, version = rest.rpartition(":")
    return model, int(version)


def stream_tag(stream_key: str) -> str:
    """The tag of a stream key made by `stream`."""
    return stream_key.partition("{")[2].partition("}")[0]


def new_job_id(stream_key: str) -> str:
    """A fresh job id for a job on `stream_key`: its tag, then 16 random hex digits."""
    return stream_tag(stream_key) + secrets.token_hex(8)


def _job_tag(job_id: str) -> str:
    return job_id[:TAG_HEX]


def backlog(stream_key: str) -> str:
    """The summed cost of the jobs in a stream (queued and running): ENQUEUE adds a job's
    cost, the scripts that delete its entry take it away; gone when the stream empties."""
    return f"{PREFIX}:backlog:{stream_key.removeprefix(f'{PREFIX}:stream:')}"


def rate(stream_key: str) -> str:
    """Hash: worker id -> cost per busy second on a stream, as that worker measured it on its
    last batches; ENQUEUE sums those of live workers (by heartbeat) to admit by cost."""
    return f"{PREFIX}:rate:{stream_key.removeprefix(f'{PREFIX}:stream:')}"


def unservable(version_key: str) -> str:
    """Why a wanted version ("model:version") could not be loaded; set with a TTL by the
    worker that failed, read by the api to answer at once instead of queueing."""
    return f"{PREFIX}:unservable:{version_key}"


def job(job_id: str) -> str:
    """Hash holding a job's state and request metadata."""
    return f"{PREFIX}:job:{{{_job_tag(job_id)}}}:{job_id}"


def result(job_id: str) -> str:
    """A job's encoded result tensors (set once, with a TTL)."""
    return f"{PREFIX}:result:{{{_job_tag(job_id)}}}:{job_id}"


def partial(job_id: str) -> str:
    """Stream of a running job's finished rows, chunk by chunk (app/queue/partials.py)."""
    return f"{PREFIX}:partial:{{{_job_tag(job_id)}}}:{job_id}"


def rendered(job_id: str, media_type: str) -> str:
    """A finished job's result rendered as `media_type` (a style sheet), kept as its result."""
    return f"{PREFIX}:rendered:{{{_job_tag(job_id)}}}:{job_id}:{media_type}"


def reply_channel(api_instance: str) -> str:
    """The pub/sub channel on which one api process hears its jobs finish."""
    return f"{PREFIX}:reply:{api_instance}"


def idempotency(stream_key: str, key: str) -> str:
    """Maps a client's Idempotency-Key to one job id on one version's stream (the key lives in
    the stream's slot, so a retry after an alias moves to another version is a new job)."""
    return f"{PREFIX}:idem:{{{stream_tag(stream_key)}}}:{key}"


def worker(worker_id: str) -> str:
    """A worker's heartbeat hash (expires when the worker stops beating)."""
    return f"{PREFIX}:worker:{worker_id}"


def style(style_id: str) -> str:
    """A saved style: its code, the version that computed it, and its normalised references."""
    return f"{PREFIX}:style:{style_id}"


def steps(job_id: str) -> str:
    """Hash of a long job's finished steps (field = step index, value = what the step left:
    a font's traced contours) and `computed` (steps run, resumed ones not counted twice),
    so a job another worker takes over resumes from its last finished step (worker/lanes.py)."""
    return f"{PREFIX}:steps:{{{_job_tag(job_id)}}}:{job_id}"
