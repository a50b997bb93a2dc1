"""The model versions one worker holds: every version an alias routes to (or a requested move
needs), loaded as soon as it is served and unloaded once drained, and up to
`max_unaliased_versions` pinned versions no alias holds (app/worker/pinned.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy.orm import Session, sessionmaker

from app.errors import NotFound, VersionNotServed
from app.queue import keys
from app.queue.consumer import StreamConsumer
from app.registry import service
from app.registry.service import ServedVersion
from app.runtime.models import LoadedModel
from app.settings import Settings
from app.worker.heartbeat import loaded_anywhere
from app.worker.pinned import UNSERVABLE_TTL_S, PinnedDemand, unservable_detail

log = logging.getLogger("hanmo.worker")


class ModelSet:
    def __init__(
        self,
        settings: Settings,
        consumer: StreamConsumer,
        load: Callable[[ServedVersion], LoadedModel],
        sessions: sessionmaker[Session],
        only: set[str] | None = None,
    ) -> None:
        self.settings = settings
        self.consumer = consumer
        self.load = load
        self.sessions = sessions
        self.only = only
        self.demand = PinnedDemand(consumer.redis, settings)
        self.models: dict[str, LoadedModel] = {}  # stream key -> model
        self.failed_loads: dict[str, str] = {}  # version key -> error
        self.served_keys: set[str] = set()  # every version an alias holds, at the last refresh
        self.wanted_keys: set[str] = set()  # every READY pinned version recently wanted
        self.pinned: set[str] = set()  # streams loaded as pinned versions (they count)
        self._skip: set[str] = set()  # wanted versions not to load: not READY, or failing
        self._pinned_failed: dict[str, float] = {}  # version key -> when its load failed
        self._unwanted_since: dict[str, float] = {}  # stream -> when it stopped being served
        self._stale_failures: set[str] = set()  # failed versions no longer asked for

    def mine(self, version_key: str) -> bool:
        """Whether this worker serves the version's model (`hanmo worker --only`)."""
        return (
            self.only is None
            or version_key.rpartition(":")[0] in self.only
            or (version_key in self.only)
        )

    def needs_refresh(self, recent: list[str]) -> bool:
        """Whether the pinned versions this worker should hold differ from those it holds."""
        skip = self.served_keys | self._skip
        desired = [k for k in recent if k not in skip and self.mine(k)]
        held = {self.models[s].served.key for s in self.pinned if s in self.models}
        return set(desired[: self.settings.max_unaliased_versions]) != held

    def refresh(self) -> bool:
        """Load every newly served or wanted version; unload those no longer served once
        drained, and pinned versions past the bound once their stream is empty. False when
        the registry did not answer (then nothing changed)."""
        recent = self.demand.recent()
        try:
            with self.sessions() as session:
                served = service.served(session)
                wanted = self._ready(session, recent, {v.key for v in served})
        except Exception as exc:  # the registry is down: keep serving what is loaded
            log.warning("worker.registry_unavailable error=%s", exc)
            return False
        self.served_keys = {v.key for v in served}
        self.wanted_keys = {v.key for v in wanted}
        aliased = {keys.stream(v.model, v.version): v for v in served if self.mine(v.key)}
        self._load_aliased(aliased)
        self._hold_pinned(aliased, [v for v in wanted if self.mine(v.key)])
        self._unload_drained(aliased)
        self._skip = {k for k in recent if k not in self.wanted_keys} | set(self._pinned_failed)
        return True

    def _ready(self, session: Session, recent: list[str], served: set[str]) -> list[ServedVersion]:
        """The recently wanted versions that are READY and no alias holds, most recent first."""
        ready: list[ServedVersion] = []
        for key in recent:
            if key in served:
                continue
            model, _, version = key.rpartition(":")
            try:
                ready.append(service.resolve(session, model, None, int(version)))
            except (NotFound, ValueError):  # archived, deleted, or never a version
                continue
        return ready

    def _load_aliased(self, aliased: dict[str, ServedVersion]) -> None:
        served_keys = {v.key for v in aliased.values()}
        for key in list(self.failed_loads):  # kept visible; retried when asked for again
            if key not in served_keys:
                self._stale_failures.add(key)
            elif key in self._stale_failures:
                self._stale_failures.discard(key)
                del self.failed_loads[key]
        for stream, served in aliased.items():
            self._unwanted_since.pop(stream, None)
            self.pinned.discard(stream)  # an alias holds it now: it no longer counts
            if stream not in self.models and served.key not in self.failed_loads:
                self._load(stream, served)

    def _hold_pinned(self, aliased: dict[str, ServedVersion], wanted: list[ServedVersion]) -> None:
        """Keep the most recently wanted pinned versions loaded, at most the bound."""
        bound = self.settings.max_unaliased_versions
        if bound == 0:  # none served here: say so rather than leave the jobs waiting
            for version in wanted:
                self._fail_waiting(version, "workers serve no version that no alias holds")
        desired: dict[str, ServedVersion] = {}
        for version in wanted:
            if len(desired) < bound and not self._failing(version):
                desired[keys.stream(version.model, version.version)] = version
        for stream in sorted(self.pinned - desired.keys()):  # least recently wanted: evict
            if self.consumer.redis.xlen(stream) == 0:
                self._unload(stream, "evicted")
        for stream, version in desired.items():
            if stream in self.models:
                self._unwanted_since.pop(stream, None)
                self.pinned.add(stream)
            elif len(self.pinned) < bound and self._load_pinned(stream, version):
                self.pinned.add(stream)

    def _failing(self, version: ServedVersion) -> bool:
        """A pinned version whose load failed lately: its waiting jobs are failed at once."""
        failed_at = self._pinned_failed.get(version.key)
        if failed_at is None:
            return False
        if time.monotonic() - failed_at >= UNSERVABLE_TTL_S:  # try it again
            del self._pinned_failed[version.key]
            self.failed_loads.pop(version.key, None)
            return False
        self._fail_waiting(version)
        return True

    def _load_pinned(self, stream: str, version: ServedVersion) -> bool:
        if self._load(stream, version):
            self.demand.clear_unservable(version.key)
            return True
        self._pinned_failed[version.key] = time.monotonic()
        self._fail_waiting(version)
        return False

    def _fail_waiting(self, version: ServedVersion, reason: str = "") -> None:
        """Fail the jobs waiting for a version this worker could not load, and tell the api to
        refuse more for a while; unless another worker serves it."""
        redis = self.consumer.redis
        if version.key in loaded_anywhere(redis, self.settings.heartbeat_ttl_s):
            return
        reason = reason or self.failed_loads.get(version.key, "its load failed")
        detail = unservable_detail(version.key, reason)
        self.demand.mark_unservable(version.key, detail)
        stream = keys.stream(version.model, version.version)
        self.consumer.ensure_group(stream)
        failed = self.consumer.fail_waiting(stream, VersionNotServed(detail))
        if failed:
            log.warning("worker.unservable version=%s failed_jobs=%d", version.key, failed)

    def _unload_drained(self, aliased: dict[str, ServedVersion]) -> None:
        now = time.monotonic()
        for stream in [s for s in self.models if s not in aliased and s not in self.pinned]:
            since = self._unwanted_since.setdefault(stream, now)
            # keep draining: requests routed just before a move still arrive for a while
            if now - since >= self.settings.drain_s and self.consumer.redis.xlen(stream) == 0:
                self._unload(stream, "unloaded")

    def _load(self, stream: str, served: ServedVersion) -> bool:
        try:
            model = self.load(served)
        except Exception as exc:  # a version that fails to load must not stop the others
            self.failed_loads[served.key] = str(exc)
            log.error("worker.load_failed version=%s error=%s", served.key, exc)
            return False
        self.consumer.ensure_group(stream)
        self.models[stream] = model
        log.info(
            "worker.loaded version=%s provider=%s warmup_ms=%.1f",
            served.key,
            model.provider,
            model.warmup_ms,
        )
        return True

    def _unload(self, stream: str, event: str) -> None:
        log.info("worker.%s version=%s", event, self.models[stream].served.key)
        del self.models[stream]
        self.pinned.discard(stream)
        self._unwanted_since.pop(stream, None)

    def streams(self) -> Iterable[str]:
        return list(self.models)
