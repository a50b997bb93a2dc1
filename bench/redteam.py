"""The red-team cases of issue 46, rerun on a private hanmo (embedded Redis, SQLite or a
Postgres database of its own, `hanmo api` and `hanmo worker` processes, one stack per case,
every setting at its default unless the case says otherwise). Per case: what was observed,
the target it is held to, the figure from the issue ("before") and a verdict, printed as
JSON and written to bench/out/redteam.json.

* `heavy_sheet`: one style-transfer request with no key, one reference (永), text 256 x 永,
  512 px, `Accept: image/png` (one big sheet). Beside it, `/livez` every 50 ms from a process
  of its own; the api's RSS every 50 ms, and its VmHWM. Target: livez p99 < 100 ms, api RSS
  <= 1024 MB.
* `sheet_get_twice`: the same request with `Prefer: respond-async`; once done, its sheet
  fetched twice with `GET /v1/jobs/{id}` and `Accept: image/png`. Target: the second < 1 s.
* `deep_json`: JSON bodies nested 2,000 deep posted to the style routes. Target: 400 or 422
  as application/problem+json, and no traceback in the api's log.
* `db_away`: the registry database (Postgres, reached through a TCP proxy of this run's) cut
  off after a warm request; /readyz and vae-digits samples for 10 s. Target: /readyz 200
  `degraded` and samples 200 throughout.
* `key_expiry`: keys required; an infer key made through /admin/keys with expires_in_s=3,
  used every 20 ms. Target: never accepted more than 3.1 s after it was made.
* `ownerless_objects`: an async job and a saved style made while keys were not required; the
  api restarted with keys required (same Redis and registry). Target: an infer key can
  neither read nor delete them (403 or 404).
* `symlink_uri`: registering by URI a folder inside the register root whose graph is a
  symbolic link, or a hard link, to a file outside it. Target: refused (4xx problem), and
  nothing new in the artifact store.
* `chained_uri`: URIs chaining file systems with `::` (plain, percent-encoded, as a prefix).
  Target: refused (4xx problem), and nothing new in the artifact store.

Covered elsewhere, not repeated here: the font job beside sampling (`bench.chaos font`), the
style flood (`bench.overload flood`), a slot killed during synchronous requests
(`bench.overload killsync`).

    .venv/bin/python -m bench.redteam [--only CASE]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.redis_conn import EmbeddedRedis
from app.registry import apikeys
from app.registry.db import make_engine, make_sessionmaker, upgrade
from app.services.registration import register_directory
from app.settings import Settings
from bench.chaos import OUT
from bench.overload import DIGITS, EXAMPLES, SMALL_URL, STYLE, STYLE_URL, _children, _rss, probing
from bench.serving import DefaultSettings, free_port, private_hanmo, serving

PROBLEM = "application/problem+json"
PNG = {"Accept": "image/png"}
ASYNC = {"Prefer": "respond-async"}
HEAVY_TEXT = "永" * 256
DEPTH = 2000
KEY_TTL_S = 3
CLOCK_SLACK_S = 0.1
DB_AWAY_S = 10.0
# Postgres for `db_away`: HANMO_TEST_DATABASE_URL as the tests take it, else the local server.
PG_URL = os.environ.get("HANMO_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test")


def verdict(met: bool) -> str:
    return "pass" if met else "fail"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_key(settings: Settings, scope: str) -> str:
    """A key made straight in the registry database, as `hanmo keys create` does."""
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine).begin() as session:
        key = str(apikeys.create(session, "redteam", scope)["key"])
    engine.dispose()
    return key


def yong() -> list[dict[str, str]]:
    """One reference: the Ma Shan Zheng 永."""
    return [
        {"image": base64.b64encode((EXAMPLES / "yong.png").read_bytes()).decode(), "char": "永"}
    ]


def heavy_body() -> dict[str, Any]:
    return {"references": yong(), "text": HEAVY_TEXT, "size": 512}


@contextmanager
def stack(tmp: Path, style: bool, **update: Any) -> Iterator[tuple[Settings, str]]:
    """A private hanmo serving vae-digits (and glyph-style when `style`); settings, base URL."""
    with private_hanmo(tmp, DIGITS) as bench:
        settings = bench.settings.model_copy(update={"port": free_port(), **update})
        if style:
            register_directory(settings, STYLE, "production")
        with serving(settings, tmp / "logs") as base:
            yield settings, base


def api_pid() -> int:
    """The `hanmo api` process among this process's children."""
    for pid in _children(os.getpid()):
        try:
            line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "app.cli api" in line:
            return pid
    raise RuntimeError("no hanmo api child")


def hwm_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM, kB): what 50 ms sampling may miss."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def quantile_ms(seconds: list[float], q: float) -> float | None:
    ordered = sorted(seconds)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)


# -- the style sheet -------------------------------------------------------------------------


def heavy_sheet(tmp: Path) -> dict[str, Any]:
    """The big sheet, synchronous, while /livez is probed and the api's RSS sampled."""
    with stack(tmp, style=True) as (_, base), httpx.Client(base_url=base, timeout=300) as http:
        warm = http.post(STYLE_URL, json={"references": yong(), "text": "永"})
        warm.raise_for_status()
        pid, peak_kb, stop = api_pid(), [0], threading.Event()
        before_kb, hwm_before_kb = _rss(pid), hwm_kb(pid)

        def watch() -> None:
            while not stop.wait(0.05):
                peak_kb[0] = max(peak_kb[0], _rss(pid))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        with probing(base, "livez", 0.05, tmp / "livez.json"):
            time.sleep(1.0)
            start = time.monotonic()
            answer = http.post(STYLE_URL, json=heavy_body(), headers=PNG)
            end = time.monotonic()
            time.sleep(0.5)
        stop.set()
        watcher.join()
        hwm_after_kb = hwm_kb(pid)
    rows = json.loads((tmp / "livez.json").read_text())
    during = [seconds for sent, seconds, _ in rows if start <= sent < end]
    statuses = Counter(status for sent, _, status in rows if start <= sent < end)
    p99 = quantile_ms(during, 0.99)
    peak_mb = round(max(peak_kb[0], hwm_after_kb) / 1024)
    observed = {
        "status": answer.status_code,
        "content_type": answer.headers.get("content-type"),
        "png_bytes": len(answer.content),
        "seconds": round(end - start, 2),
        "livez_probes_during": len(during),
        "livez_statuses_during": dict(statuses),
        "livez_p50_ms": quantile_ms(during, 0.5),
        "livez_p99_ms": p99,
        "livez_max_ms": quantile_ms(during, 1.0),
        "api_rss_mb_before": round(before_kb / 1024),
        "api_rss_mb_peak_sampled": round(peak_kb[0] / 1024),
        "api_vmhwm_mb_before_after": [round(hwm_before_kb / 1024), round(hwm_after_kb / 1024)],
        "api_rss_mb_peak": peak_mb,
    }
    met = (
        answer.status_code == 200
        and set(statuses) == {200}
        and p99 is not None
        and p99 < 100
        and peak_mb <= 1024
    )
    return {
        "observed": observed,
        "target": "200 image/png; livez all 200, p99 < 100 ms; api RSS peak <= 1024 MB",
        "before": "livez blocked 15-17 s; api RSS 1.39 GB",
        "verdict": verdict(met),
    }


def wait_done(http: httpx.Client, job_id: str, timeout_s: float = 180) -> str:
    """Poll a job (JSON) until it is done or failed; its last status."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(http.get(f"/v1/jobs/{job_id}").json()["status"])
        if status in ("done", "failed") or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def sheet_get_twice(tmp: Path) -> dict[str, Any]:
    """The big sheet as an async job, then fetched as PNG twice."""
    with stack(tmp, style=True) as (_, base), httpx.Client(base_url=base, timeout=300) as http:
        accepted = http.post(STYLE_URL, json=heavy_body(), headers={**ASYNC, **PNG})
        if accepted.status_code != 202:
            raise RuntimeError(f"not accepted: {accepted.status_code} {accepted.text[:300]}")
        job_id = accepted.json()["job_id"]
        status = wait_done(http, job_id)
        pid = api_pid()
        hwm_before_kb, gets = hwm_kb(pid), []
        for _ in range(2):
            start = time.monotonic()
            got = http.get(f"/v1/jobs/{job_id}", headers=PNG)
            gets.append((got, time.monotonic() - start))
        hwm_after_kb = hwm_kb(pid)
    (first, first_s), (second, second_s) = gets
    observed = {
        "job_status": status,
        "statuses": [first.status_code, second.status_code],
        "content_types": [first.headers.get("content-type"), second.headers.get("content-type")],
        "first_get_s": round(first_s, 3),
        "second_get_s": round(second_s, 3),
        "same_bytes": first.content == second.content,
        "png_bytes": len(second.content),
        "api_vmhwm_mb_before_after_gets": [round(hwm_before_kb / 1024), round(hwm_after_kb / 1024)],
    }
    met = (
        first.status_code == second.status_code == 200
        and first.content == second.content
        and second_s < 1.0
        and second_s < first_s / 2
    )
    return {
        "observed": observed,
        "target": "both 200 image/png, byte-identical; the second < 1 s (and under half the first)",
        "before": "about 7 s each",
        "verdict": verdict(met),
    }


# -- JSON nested deep ------------------------------------------------------------------------


def nested_bodies() -> dict[str, bytes]:
    open_, close = b"[" * DEPTH, b"]" * DEPTH
    return {
        "text_nested": b'{"text": ' + open_ + close + b"}",
        "references_nested": b'{"text": "x", "references": ' + open_ + close + b"}",
        "bare_array": open_ + close,
    }


def log_errors(log: Path) -> dict[str, int]:
    """The log's lines, and its tracebacks (hanmo's and uvicorn's own)."""
    content = log.read_text(errors="replace")
    return {
        "lines": content.count("\n"),
        "Traceback": content.count("Traceback"),
        "Exception in ASGI": content.count("Exception in ASGI"),
    }


def deep_json(tmp: Path) -> dict[str, Any]:
    """Bodies nested 2,000 deep to both style routes; answers and the api log's tracebacks."""
    answers: dict[str, dict[str, Any]] = {}
    log = tmp / "logs" / "api.log"
    with stack(tmp, style=True) as (_, base), httpx.Client(base_url=base, timeout=60) as http:
        logged_before = log_errors(log)
        for path in (STYLE_URL, "/v1/styles"):
            for name, body in nested_bodies().items():
                response = http.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                answers[f"{path} {name}"] = {
                    "status": response.status_code,
                    "content_type": response.headers.get("content-type"),
                    "detail": _detail(response),
                }
        time.sleep(0.5)  # let the api flush its log
        logged_after = log_errors(log)
    logged = {k: logged_after[k] - logged_before[k] for k in logged_after}
    met = all(
        a["status"] in (400, 422) and a["content_type"] == PROBLEM for a in answers.values()
    ) and not (logged["Traceback"] or logged["Exception in ASGI"])
    return {
        "observed": {"answers": answers, "api_log_during": logged},
        "target": "400/422 application/problem+json each; no traceback in the api log",
        "before": "500 and two tracebacks per request",
        "verdict": verdict(met),
    }


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except ValueError:
        return response.text[:200]


# -- the registry database away --------------------------------------------------------------


class Proxy:
    """A TCP proxy 127.0.0.1:<port> -> `target`, a thread per direction of each connection;
    `cut` closes the listener and every connection (the database is away)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.cut_off = False
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # the listener was cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                if self.cut_off:
                    client.close()
                    upstream.close()
                    return
                self.sockets += [client, upstream]
                self.connections += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self) -> None:
        with self.lock:
            self.cut_off = True
            sockets, self.sockets = self.sockets, []
        for sock in (self.listener, *sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes accept() and recv() at once
            except OSError:
                pass
            sock.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh Postgres database, `redteam_<pid>`, migrated to head; dropped at exit."""
    name = f"redteam_{os.getpid()}"
    admin_url = make_url(PG_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        upgrade(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def db_away(tmp: Path) -> dict[str, Any]:
    """vae-digits on a Postgres registry behind a proxy; the proxy cut after a warm request."""
    target = "/readyz 200 `degraded` and every sample 200 while the database is away"
    try:
        database = postgres_database()
        url = database.__enter__()
    except Exception as exc:  # no Postgres here: nothing to measure
        return {"verdict": "skipped", "reason": f"no Postgres at {PG_URL}: {exc}"[:400]}
    try:
        return _db_away(tmp, url) | {"target": target, "before": "/readyz 503 the whole time"}
    finally:
        database.__exit__(None, None, None)


def _db_away(tmp: Path, url: str) -> dict[str, Any]:
    pg = make_url(url)
    proxy = Proxy((pg.host or "127.0.0.1", pg.port or 5432))
    redis = EmbeddedRedis(tmp / "redis")
    redis.start()
    readyz: list[tuple[float, int, str | None]] = []
    samples: list[tuple[float, int]] = []
    try:
        settings = DefaultSettings(home=tmp / "home", redis_url=redis.url, database_url=url)
        register_directory(settings, DIGITS, "production")
        proxied = pg.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        settings = settings.model_copy(update={"database_url": proxied, "port": free_port()})
        with (
            serving(settings, tmp / "logs") as base,
            httpx.Client(base_url=base, timeout=10) as http,
        ):
            warm = [http.post(SMALL_URL, json={"n": 1, "seed": s}).status_code for s in range(3)]
            ready_before = http.get("/readyz")
            proxied_connections = proxy.connections
            cut_at = time.monotonic()
            proxy.cut()
            seed = 0
            while (now := time.monotonic()) < cut_at + DB_AWAY_S:
                seed += 1
                try:
                    ready = http.get("/readyz")
                    readyz.append((now - cut_at, ready.status_code, ready.json().get("status")))
                except (httpx.HTTPError, ValueError):
                    readyz.append((now - cut_at, 0, None))
                try:
                    sample = http.post(SMALL_URL, json={"n": 1, "seed": seed})
                    samples.append((now - cut_at, sample.status_code))
                except httpx.HTTPError:
                    samples.append((now - cut_at, 0))
                time.sleep(0.25)
            last_ready = http.get("/readyz").json()
    finally:
        proxy.cut()
        redis.stop()
    seen = Counter(f"{status} {body}" for _, status, body in readyz)
    first_ok = next((t for t, status, body in readyz if (status, body) == (200, "degraded")), None)
    observed = {
        "warm_samples": warm,
        "connections_through_proxy_before_cut": proxied_connections,
        "readyz_before_cut": [ready_before.status_code, ready_before.json().get("status")],
        "seconds_away": DB_AWAY_S,
        "readyz": dict(seen),
        "readyz_first_degraded_s": None if first_ok is None else round(first_ok, 2),
        "samples": dict(Counter(status for _, status in samples)),
        "readyz_last_body": last_ready,
    }
    met = set(seen) == {"200 degraded"} and {status for _, status in samples} == {200}
    return {"observed": observed, "verdict": verdict(met)}


# -- keys ------------------------------------------------------------------------------------


def _utc(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def key_expiry(tmp: Path) -> dict[str, Any]:
    """An infer key made to live 3 s, used every 20 ms until 9 s after it was made."""
    with (
        stack(tmp, style=False, require_api_key=True) as (settings, base),
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        admin = bearer(new_key(settings, "admin"))
        body = {"scope": "infer", "name": "redteam", "expires_in_s": KEY_TTL_S}
        sent = datetime.now(UTC)
        made = http.post("/admin/keys", json=body, headers=admin)
        made.raise_for_status()
        created, expires = _utc(made.json()["created_at"]), _utc(made.json()["expires_at"])
        key = bearer(made.json()["key"])
        tries: list[tuple[float, int, Any]] = []
        while (now := datetime.now(UTC)) < created + timedelta(seconds=3 * KEY_TTL_S):
            got = http.get("/v1/models", headers=key)
            tries.append(((now - created).total_seconds(), got.status_code, _detail(got)))
            time.sleep(0.02)
    accepted = [t for t, status, _ in tries if status == 200]
    last = max(accepted, default=None)
    refused = next(((t, s, d) for t, s, d in tries if s != 200 and t > 0), None)
    observed = {
        "key_lifetime_s": (expires - created).total_seconds(),
        "created_after_request_sent_s": round((created - sent).total_seconds(), 3),
        "tries": len(tries),
        "statuses": dict(Counter(status for _, status, _ in tries)),
        "last_accepted_s_after_creation": None if last is None else round(last, 3),
        "first_refusal": None
        if refused is None
        else {"s_after_creation": round(refused[0], 3), "status": refused[1], "detail": refused[2]},
        "accepted_after_expiry": sum(t > KEY_TTL_S for t in accepted),
    }
    met = last is not None and last <= KEY_TTL_S + CLOCK_SLACK_S
    return {
        "observed": observed,
        "target": f"accepted, and never after {KEY_TTL_S + CLOCK_SLACK_S:g} s from its creation",
        "before": "accepted until 7.1 s",
        "verdict": verdict(met),
    }


def ownerless_objects(tmp: Path) -> dict[str, Any]:
    """A job and a style made with keys off, then tried with an infer key once keys are on."""
    with private_hanmo(tmp, DIGITS) as bench:
        settings = bench.settings.model_copy(update={"port": free_port()})
        register_directory(settings, STYLE, "production")
        with (
            serving(settings, tmp / "logs") as base,
            httpx.Client(base_url=base, timeout=60) as http,
        ):
            queued = http.post(SMALL_URL, json={"n": 1, "seed": 1}, headers=ASYNC)
            if queued.status_code != 202:
                raise RuntimeError(f"job not accepted: {queued.status_code} {queued.text[:300]}")
            job_id = queued.json()["job_id"]
            job_status = wait_done(http, job_id)
            saved = http.post("/v1/styles", json={"model": "glyph-style", "references": yong()})
            if saved.status_code != 201:
                raise RuntimeError(f"style not saved: {saved.status_code} {saved.text[:300]}")
            style_id = saved.json()["style_id"]
        required = settings.model_copy(update={"require_api_key": True, "port": free_port()})
        infer, admin = bearer(new_key(required, "infer")), bearer(new_key(required, "admin"))
        paths = {"job": f"/v1/jobs/{job_id}", "style": f"/v1/styles/{style_id}"}
        seen: dict[str, dict[str, int]] = {}
        with (
            serving(required, tmp / "logs2") as base,
            httpx.Client(base_url=base, timeout=60) as http,
        ):
            for what, path in paths.items():
                seen[what] = {
                    "infer_get": http.get(path, headers=infer).status_code,
                    "infer_delete": http.delete(path, headers=infer).status_code,
                    "admin_get_after": http.get(path, headers=admin).status_code,
                    "no_key_get": http.get(path).status_code,
                }
    refused = (403, 404)
    met = all(
        s["infer_get"] in refused and s["infer_delete"] in refused and s["admin_get_after"] == 200
        for s in seen.values()
    )
    return {
        "observed": {"job_status_before_restart": job_status, **seen},
        "target": "infer key: GET and DELETE 403/404 on both; still there for an admin (200)",
        "before": "readable and deletable by any key",
        "verdict": verdict(met),
    }


# -- registering by URI ----------------------------------------------------------------------


def stored(settings: Settings) -> list[str]:
    """Every path in the artifact store."""
    root = Path(settings.resolved_artifact_root())
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


def try_uris(
    tmp: Path, allowed: Path, uris: dict[str, str], control: Path | None
) -> dict[str, Any]:
    """Post each URI to the admin API on a stack whose register root is `allowed`; answers,
    what appeared in the artifact store and the version rows meanwhile, and (`control`) a
    plain folder in the root registered after them, to show the root admits URIs at all."""
    with stack(tmp, style=False, register_roots=[str(allowed)]) as (settings, base):
        admin = bearer(new_key(settings, "admin"))
        versions = "/admin/models/vae-digits/versions"
        with httpx.Client(base_url=base, timeout=60, headers=admin) as http:
            files, rows = stored(settings), len(http.get(versions).json())
            answers = {}
            for name, uri in uris.items():
                response = http.post(f"{versions}?wait_s=0", json={"uri": uri})
                answers[name] = {
                    "uri": uri,
                    "status": response.status_code,
                    "content_type": response.headers.get("content-type"),
                    "detail": _detail(response),
                }
            new_files = sorted(set(stored(settings)) - set(files))
            new_rows = len(http.get(versions).json()) - rows
            result: dict[str, Any] = {
                "answers": answers,
                "new_in_artifact_store": new_files,
                "new_version_rows": new_rows,
            }
            if control is not None:
                plain = http.post(f"{versions}?wait_s=0", json={"uri": f"file://{control}"})
                result["control_plain_folder_status"] = plain.status_code
    refused = all(
        400 <= a["status"] < 500 and a["content_type"] == PROBLEM for a in answers.values()
    )
    met = refused and not new_files and new_rows == 0
    return {"observed": result, "verdict": verdict(met)}


def symlink_uri(tmp: Path) -> dict[str, Any]:
    """Folders in the root whose graph is a symbolic or a hard link to a file outside it."""
    allowed, outside = tmp / "allowed", tmp / "outside"
    outside.mkdir()
    secret = shutil.copy(DIGITS / "sample.onnx", outside / "sample.onnx")
    folders = {}
    for name in ("symlink", "hardlink", "plain"):
        folders[name] = shutil.copytree(DIGITS, allowed / name)
    (folders["symlink"] / "sample.onnx").unlink()
    (folders["symlink"] / "sample.onnx").symlink_to(secret)
    (folders["hardlink"] / "sample.onnx").unlink()
    os.link(secret, folders["hardlink"] / "sample.onnx")
    uris = {name: f"file://{folders[name]}" for name in ("symlink", "hardlink")}
    return try_uris(tmp, allowed, uris, folders["plain"]) | {
        "target": "each 4xx application/problem+json; nothing new in the artifact store",
        "before": "the symbolic link's target was copied into the store before the refusal",
    }


def chained_uri(tmp: Path) -> dict[str, Any]:
    """URIs inside the root that chain file systems with `::`."""
    allowed = tmp / "allowed"
    folder = shutil.copytree(DIGITS, allowed / "v2")
    uris = {
        "suffix": f"file://{folder}::memory://elsewhere",
        "percent_encoded": f"file://{folder}%3A%3Amemory://elsewhere",
        "prefix": f"simplecache::file://{folder}",
    }
    return try_uris(tmp, allowed, uris, None) | {
        "target": "each 4xx application/problem+json; nothing new in the artifact store",
        "before": "`::` was accepted",
    }


CASES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "heavy_sheet": heavy_sheet,
    "sheet_get_twice": sheet_get_twice,
    "deep_json": deep_json,
    "db_away": db_away,
    "key_expiry": key_expiry,
    "ownerless_objects": ownerless_objects,
    "symlink_uri": symlink_uri,
    "chained_uri": chained_uri,
}


def run_case(name: str) -> dict[str, Any]:
    """One case in a temporary directory of its own; an exception is its verdict `error`."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"hanmo-redteam-{name}-") as tmp:
        try:
            result = CASES[name](Path(tmp))
        except Exception as exc:
            result = {"verdict": "error", "error": "".join(traceback.format_exception(exc))[-3000:]}
    return result | {"case_seconds": round(time.monotonic() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.redteam", description=__doc__)
    parser.add_argument("--only", choices=list(CASES), action="append", help="repeatable")
    args = parser.parse_args()
    start = time.monotonic()
    results = {name: run_case(name) for name in args.only or CASES}
    report = {
        "verdicts": {name: result["verdict"] for name, result in results.items()},
        "total_seconds": round(time.monotonic() - start, 1),
        "cases": results,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "redteam.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
