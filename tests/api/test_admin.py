"""The admin registry over real HTTP (live uvicorn), a real worker, Redis and the database:
keys and scopes, models, uploads and URIs, alias moves (two-phase), canary, rollback, audit."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from hanmo_client import ApiError, Hanmo
from sqlalchemy import func, select

from app.registry import apikeys, artifacts
from app.registry.db import make_engine, make_sessionmaker
from app.registry.local import bootstrap_admin_key
from app.registry.tables import AuditEvent, ModelVersion, RegisteredModel
from app.services.registration import register_directory
from app.settings import Settings
from tests.helpers import ROOT, live_api, settings_env, wait_until, worker_thread
from training import tiny_sampler

PROBLEM = "application/problem+json"


def new_key(settings: Settings, scope: str, expires_in_s: int | None = None) -> str:
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine).begin() as session:
        created = apikeys.create(session, "test", scope, f"test {scope}", expires_in_s)
    engine.dispose()
    return str(created["key"])


def count(settings: Settings, table: type) -> int:  # type: ignore[type-arg]
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine)() as session:
        value = session.scalar(select(func.count()).select_from(table))
    engine.dispose()
    return int(value or 0)


def client_for(http: httpx.Client, key: str | None) -> Hanmo:
    """The typed client bound to a live api (reusing the test's base URL)."""
    return Hanmo(str(http.base_url), api_key=key)


@pytest.fixture(scope="module")
def tiny_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sampler.build(tmp_path_factory.mktemp("tiny2") / "tiny-sampler", seed=1)


@pytest.fixture(scope="module")
def tiny_v3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sampler.build(tmp_path_factory.mktemp("tiny3") / "tiny-sampler", seed=2)


def test_admin_needs_an_admin_key_and_refusals_change_nothing(tiny: Settings) -> None:
    admin_key = new_key(tiny, "admin")
    infer_key = new_key(tiny, "infer")
    revoked = new_key(tiny, "admin")
    expired = new_key(tiny, "admin", expires_in_s=1)
    body = {"name": "other", "kind": "sampler"}
    with live_api(tiny) as http:
        admin = client_for(http, admin_key)
        admin.admin.revoke_key(revoked.split("_")[1])
        time.sleep(1.1)  # let the short key expire
        before = (count(tiny, RegisteredModel), count(tiny, AuditEvent))
        cases = {
            "no key": ({}, 401),
            "wrong key": ({"Authorization": "Bearer hm_000000000000_nope"}, 401),
            "malformed": ({"Authorization": "Bearer whatever"}, 401),
            "not bearer": ({"Authorization": "Basic abc"}, 401),
            "revoked": ({"Authorization": f"Bearer {revoked}"}, 401),
            "expired": ({"Authorization": f"Bearer {expired}"}, 401),
            "infer key": ({"Authorization": f"Bearer {infer_key}"}, 403),
            "forged secret": ({"X-API-Key": admin_key[:-3] + "xyz"}, 401),
        }
        for name, (headers, status) in cases.items():
            response = http.post("/admin/models", json=body, headers=headers)
            assert response.status_code == status, (name, response.text)
            assert response.headers["content-type"].startswith(PROBLEM), name
            assert "Traceback" not in response.text
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
        assert http.get("/admin/keys").status_code == 401
        assert (count(tiny, RegisteredModel), count(tiny, AuditEvent)) == before
        created = admin.admin.create_model("other", "sampler", "made by the admin key")
        assert created.name == "other"
        keys = {k.key_id: k for k in admin.admin.list_keys()}
        assert keys[revoked.split("_")[1]].revoked_at is not None
        assert all(k.key is None for k in keys.values())  # secrets are never listed
        audit = admin.admin.audit()
    actions = [e.action for e in audit]
    assert actions[0] == "model.create"
    assert audit[0].key_id == admin_key.split("_")[1]
    assert "key.revoke" in actions


def test_the_last_admin_key_cannot_be_revoked(settings: Settings) -> None:
    only = new_key(settings, "admin")
    with live_api(settings) as http:
        hanmo = client_for(http, only)
        with pytest.raises(ApiError) as refused:
            hanmo.admin.revoke_key(only.split("_")[1])
        assert refused.value.status == 409
        other = hanmo.admin.create_key("admin", "second")
        assert hanmo.admin.revoke_key(only.split("_")[1]).revoked_at is not None
        assert client_for(http, other.key).admin.list_keys()[0].key_id == only.split("_")[1]


def test_keys_are_stored_hashed(settings: Settings) -> None:
    key = new_key(settings, "infer")
    key_id, secret = key.split("_")[1:]
    engine = make_engine(settings.resolved_database_url())
    with engine.connect() as connection:
        rows = [dict(r._mapping) for r in connection.exec_driver_sql("SELECT * FROM api_keys")]
    engine.dispose()
    stored = json.dumps(rows, default=str)
    assert key_id in stored
    assert secret not in stored


def test_bootstrap_admin_key_once(settings: Settings) -> None:
    first = bootstrap_admin_key(settings)
    assert first is not None
    assert first.startswith("hm_")
    assert bootstrap_admin_key(settings) is None
    with live_api(settings) as http:
        assert client_for(http, first).admin.list_keys()[0].scope == "admin"


def test_required_keys_own_their_jobs_and_are_rate_limited(tiny: Settings) -> None:
    settings = tiny.model_copy(
        update={
            "require_api_key": True,
            "rate_limit_per_s": 0.2,
            "rate_limit_burst": 4,
            "keep_sync_results": True,  # the synchronous job is read back below
        }
    )
    alice, bob, boss = (new_key(settings, s) for s in ("infer", "infer", "admin"))
    sample = "/v1/models/tiny-sampler/sample"

    def auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with worker_thread(settings), live_api(settings) as http:
        assert http.post(sample, json={"n": 1, "seed": 1}).status_code == 401
        assert http.get("/v1/models").status_code == 401
        done = http.post(sample, json={"n": 1, "seed": 1}, headers=auth(alice))  # alice: 1
        assert done.status_code == 200, done.text
        job = f"/v1/jobs/{done.json()['job_id']}"
        assert http.get(job, headers=auth(alice)).json()["status"] == "done"  # alice: 2
        assert http.get(job, headers=auth(bob)).status_code == 404
        assert http.delete(job, headers=auth(bob)).status_code == 404
        assert http.get(job, headers=auth(boss)).status_code == 200
        statuses = [  # alice: 3, 4, then over her burst
            http.post(sample, json={"n": 1, "seed": 2}, headers=auth(alice)).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]
        limited = http.post(sample, json={"n": 1, "seed": 2}, headers=auth(alice))
        assert limited.status_code == 429
        assert limited.headers["content-type"].startswith(PROBLEM)
        assert int(limited.headers["retry-after"]) >= 1
        mine = http.post(sample, json={"n": 1, "seed": 3}, headers=auth(bob))  # bob's own bucket
        assert mine.status_code == 200, mine.text


def test_models_crud_paging_and_delete_refused_while_aliased(tiny: Settings) -> None:
    key = new_key(tiny, "admin")
    with live_api(tiny) as http:
        hanmo = client_for(http, key)
        for i in range(5):
            hanmo.admin.create_model(f"m{i}", "predictive", team="a")
        with pytest.raises(ApiError) as exists:
            hanmo.admin.create_model("m0", "predictive")
        assert exists.value.status == 409
        first = hanmo.admin.list_models(limit=4)
        second = hanmo.admin.list_models(limit=4, offset=first.next_offset or 0)
        names = [m.name for m in first.models + second.models]
        assert names == sorted(names)
        assert len(names) == 6
        assert second.next_offset is None
        updated = hanmo.admin.update_model("m1", description="new", tags={"team": "b"})
        assert (updated.description, updated.tags) == ("new", {"team": "b"})
        with pytest.raises(ApiError) as aliased:
            hanmo.admin.delete_model("tiny-sampler")
        assert aliased.value.status == 409
        for refused_call in (hanmo.admin.delete_version, hanmo.admin.archive_version):
            with pytest.raises(ApiError) as held:
                refused_call("tiny-sampler", 1)
            assert held.value.status == 409
            assert "production" in held.value.problem["detail"]
        huge = 2**40  # found by schemathesis: once a 500 (SQLite INTEGER overflow)
        for method, path, body in (
            ("PUT", "/admin/models/tiny-sampler/aliases/production", {"version": huge}),
            ("GET", f"/admin/models/tiny-sampler/versions/{huge}", None),
            ("GET", f"/admin/audit?before={huge}", None),
            ("POST", "/v1/models/tiny-sampler/sample", {"n": 1, "version": huge}),
        ):
            answer = http.request(
                method, path, json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert answer.status_code == 422, (path, answer.text)
        hanmo.admin.delete_model("m2")
        with pytest.raises(ApiError) as gone:
            hanmo.admin.delete_model("m2")
        assert gone.value.status == 404
        bad = http.post(
            "/admin/models",
            json={"name": "Bad Name", "kind": "sampler"},
            headers={"Authorization": f"Bearer {key}"},
        )
        assert bad.status_code == 422
        hanmo.admin.delete_alias("tiny-sampler", "production")
        hanmo.admin.delete_model("tiny-sampler")
    assert count(tiny, ModelVersion) == 0
    assert not any((Path(tiny.resolved_artifact_root()) / "tiny-sampler").glob("*/model.onnx"))


def test_upload_check_promote_and_serve(tiny: Settings, tiny_v2: Path) -> None:
    key = new_key(tiny, "admin")
    with worker_thread(tiny), live_api(tiny) as http:
        hanmo = client_for(http, key)
        pending = hanmo.admin.upload_version("tiny-sampler", tiny_v2, wait_s=0)
        assert (pending.version, pending.status) == (2, "PENDING")
        ready = hanmo.admin.wait_ready("tiny-sampler", 2)
        assert ready.status == "READY", ready.status_message
        assert "warm-up" in ready.status_message
        assert hanmo.sample("tiny-sampler", n=1, seed=5).version == 1
        moved = hanmo.admin.set_alias("tiny-sampler", "production", 2)
        assert (moved.version, moved.state) == (2, "ready")
        assert hanmo.sample("tiny-sampler", n=1, seed=5).version == 2
        history = hanmo.admin.alias_history("tiny-sampler", "production")
        wait_until(lambda: "tiny-sampler:2" in hanmo.admin.workers()[0].models)
        workers = hanmo.admin.workers()
        queues = hanmo.admin.queues()
    assert [e.action for e in history] == ["set", "move-requested", "moved"]
    assert history[-1].actor.startswith("worker:")
    assert (history[-1].from_.version, history[-1].to.version) == (1, 2)
    assert workers[0].device == "cpu"
    assert workers[0].models["tiny-sampler:2"]["provider"] == "CPUExecutionProvider"
    assert {(q.model, q.version) for q in queues.queues} >= {("tiny-sampler", 2)}


def test_the_first_upload_into_an_empty_registry_is_checked(
    settings: Settings, tiny_dir: Path
) -> None:
    # A worker serving nothing used to read no stream at all, the checks stream included: the
    # first version ever uploaded stayed PENDING for ever.
    key = new_key(settings, "admin")
    with worker_thread(settings, serving=False), live_api(settings) as http:
        hanmo = client_for(http, key)
        hanmo.admin.create_model("tiny-sampler", "sampler")
        pending = hanmo.admin.upload_version("tiny-sampler", tiny_dir, wait_s=0)
        assert (pending.version, pending.status) == (1, "PENDING")
        ready = hanmo.admin.wait_ready("tiny-sampler", 1)
    assert ready.status == "READY", ready.status_message


def upload(
    http: httpx.Client, key: str, directory: Path, wait_s: float = 30.0, **extra: str
) -> httpx.Response:
    card = json.loads((directory / "card.json").read_text())
    names = [g["file"] for g in card["graphs"].values()] + list(card.get("files", {}))
    files = [("card", ("card.json", (directory / "card.json").read_bytes()))]
    files += [("files", (n, (directory / n).read_bytes())) for n in names]
    return http.post(
        "/admin/models/tiny-sampler/versions",
        params={"wait_s": wait_s},
        files=files,
        data=extra or None,
        headers={"Authorization": f"Bearer {key}"},
    )


def test_bad_uploads_and_uris_leave_nothing_behind(
    tiny: Settings, tiny_v2: Path, tmp_path: Path
) -> None:
    settings = tiny.model_copy(
        update={"max_upload_bytes": 2 * 1024 * 1024, "register_roots": [str(tmp_path / "allowed")]}
    )
    key = new_key(settings, "admin")
    auth = {"Authorization": f"Bearer {key}"}
    store = Path(settings.resolved_artifact_root()) / "tiny-sampler"
    tampered = shutil.copytree(tiny_v2, tmp_path / "tampered")
    with (tampered / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with live_api(settings) as http:
        versions = count(settings, ModelVersion)
        wrong_sha = upload(http, key, tiny_v2, sha256="0" * 64)
        assert wrong_sha.status_code == 422
        assert "sha256" in wrong_sha.json()["detail"]
        corrupt = upload(http, key, tampered)
        assert corrupt.status_code == 422
        assert "model.onnx" in corrupt.json()["detail"]
        missing = http.post(
            "/admin/models/tiny-sampler/versions",
            files=[("card", ("card.json", (tiny_v2 / "card.json").read_bytes()))],
            headers=auth,
        )
        assert missing.status_code == 422
        assert "missing" in missing.json()["detail"]
        big = tmp_path / "big"
        shutil.copytree(tiny_v2, big)
        card = json.loads((big / "card.json").read_text())
        (big / "pad.bin").write_bytes(b"\0" * 3_000_000)
        from app.registry.cards import sha256_file

        card["files"] = {"pad.bin": sha256_file(big / "pad.bin")}
        (big / "card.json").write_text(json.dumps(card))
        too_big = upload(http, key, big)
        assert too_big.status_code == 413, too_big.text
        for uri in (
            "file:///etc/passwd",
            f"file://{tmp_path}/allowed/../tampered",
            "../tampered",
            f"file://{tiny_v2}",
            "s3://somebody-else/models/x",
        ):
            refused = http.post(
                "/admin/models/tiny-sampler/versions", json={"uri": uri}, headers=auth
            )
            assert refused.status_code == 422, (uri, refused.text)
            assert refused.headers["content-type"].startswith(PROBLEM)
        assert count(settings, ModelVersion) == versions
        assert sorted(p.name for p in store.iterdir()) == ["1"]  # only the registered v1
        shutil.copytree(tiny_v2, tmp_path / "allowed" / "v2")
        inside = http.post(
            "/admin/models/tiny-sampler/versions?wait_s=0",
            json={"uri": f"file://{tmp_path}/allowed/v2"},
            headers=auth,
        )
        assert inside.status_code == 202, inside.text
        assert inside.json()["status"] == "PENDING"


def test_the_same_files_again_answer_with_their_version_and_store_nothing(
    tiny: Settings, tiny_dir: Path, tiny_v2: Path, tmp_path: Path
) -> None:
    settings = tiny.model_copy(update={"register_roots": [str(tmp_path / "allowed")]})
    key = new_key(settings, "admin")
    store = Path(settings.resolved_artifact_root()) / "tiny-sampler"
    shutil.copytree(tiny_v2, tmp_path / "allowed" / "v2")
    tampered = shutil.copytree(tiny_v2, tmp_path / "tampered")  # v2's card, other bytes
    with (tampered / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with live_api(settings) as http:
        hanmo = client_for(http, key)
        registered = hanmo.admin.upload_version("tiny-sampler", tiny_v2, wait_s=0)
        assert (registered.version, registered.status) == (2, "PENDING")  # no worker here
        again = upload(http, key, tiny_v2, wait_s=0)  # no worker here to wait for
        by_uri = http.post(
            "/admin/models/tiny-sampler/versions?wait_s=0",
            json={"uri": f"file://{tmp_path}/allowed/v2"},
            headers={"Authorization": f"Bearer {key}"},
        )
        cli_registered = hanmo.admin.upload_version("tiny-sampler", tiny_dir, wait_s=0)
        corrupt = upload(http, key, tampered, wait_s=0)
        reused = hanmo.admin.audit(action="version.reuse")
    assert (again.status_code, again.json()["version"]) == (200, 2), again.text
    assert again.headers["location"] == "/admin/models/tiny-sampler/versions/2"
    assert (by_uri.status_code, by_uri.json()["version"]) == (200, 2), by_uri.text
    assert cli_registered.version == 1  # the CLI's v1, uploaded through the api
    assert corrupt.status_code == 422
    assert "model.onnx" in corrupt.json()["detail"]
    assert count(settings, ModelVersion) == 2
    assert sorted(p.name for p in store.iterdir()) == ["1", "2"]
    assert sorted(e.target.split(":")[1] for e in reused) == ["1", "2", "2"]


def test_graphs_that_do_not_load_or_break_the_contract_end_failed(
    tiny: Settings, tiny_v2: Path, tmp_path: Path
) -> None:
    from app.registry.cards import sha256_file

    junk = shutil.copytree(tiny_v2, tmp_path / "junk")
    (junk / "model.onnx").write_bytes(b"this is not an onnx graph")
    card = json.loads((junk / "card.json").read_text())
    card["graphs"]["sample"]["sha256"] = sha256_file(junk / "model.onnx")
    (junk / "card.json").write_text(json.dumps(card))
    contract = shutil.copytree(tiny_v2, tmp_path / "contract")
    card = json.loads((contract / "card.json").read_text())
    card["signature"]["z_dim"] = 3
    (contract / "card.json").write_text(json.dumps(card))
    key = new_key(tiny, "admin")
    store = Path(tiny.resolved_artifact_root()) / "tiny-sampler"
    with worker_thread(tiny), live_api(tiny) as http:
        hanmo = client_for(http, key)
        for directory, words in ((junk, "ContractViolation"), (contract, "3")):
            response = upload(http, key, directory)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert words in response.json()["detail"]
            number = response.json()["version"]["version"]
            checked = hanmo.admin.version("tiny-sampler", number)
            assert checked.status == "FAILED"
            assert words in checked.status_message
            assert not (store / str(number)).exists()  # its files are gone
            with pytest.raises(ApiError) as refused:
                hanmo.admin.set_alias("tiny-sampler", "production", number)
            assert refused.value.status == 409
        assert hanmo.admin.alias("tiny-sampler", "production").version == 1
        assert [v.status for v in map(hanmo.admin.version, ["tiny-sampler"] * 3, [1, 2, 3])] == [
            "READY",
            "FAILED",
            "FAILED",
        ]
        again = upload(http, key, junk)  # a FAILED version has no files to reuse: checked anew
        assert (again.status_code, again.json()["version"]["version"]) == (422, 4), again.text


def test_jobs_queued_on_the_old_version_finish_on_it(tiny: Settings, tiny_v2: Path) -> None:
    register_directory(tiny, tiny_v2, None)
    key = new_key(tiny, "admin")
    with live_api(tiny) as http:  # no worker yet: jobs wait in v1's stream
        hanmo = client_for(http, key)
        jobs = [
            http.post(
                "/v1/models/tiny-sampler/sample",
                json={"n": 1, "seed": s},
                headers={"Prefer": "respond-async"},
            ).json()["job_id"]
            for s in range(6)
        ]
        assert hanmo.admin.set_alias("tiny-sampler", "production", 2, wait_s=0).state == "pending"
        with worker_thread(tiny):
            wait_until(lambda: all(hanmo.job(j).status == "done" for j in jobs), timeout_s=20)
            assert {hanmo.job(j).version for j in jobs} == {1}
            assert hanmo.admin.alias("tiny-sampler", "production").version == 2
            assert hanmo.sample("tiny-sampler", n=1, seed=1).version == 2


def test_a_version_that_fails_to_load_leaves_the_alias(tiny: Settings, tiny_v2: Path) -> None:
    second = register_directory(tiny, tiny_v2, None)
    (Path(artifacts.located(second.artifact_uri, tiny)) / "model.onnx").write_bytes(b"broken")
    key = new_key(tiny, "admin")
    with worker_thread(tiny), live_api(tiny) as http:
        hanmo = client_for(http, key)
        with pytest.raises(ApiError) as failed:
            hanmo.admin.set_alias("tiny-sampler", "production", 2)
        assert failed.value.status == 409
        assert "could not load" in failed.value.problem["detail"]
        alias = hanmo.admin.alias("tiny-sampler", "production")
        assert (alias.version, alias.state) == (
            1,
            "failed",
        )
        assert "tiny-sampler:2" in alias.last_error
        assert hanmo.sample("tiny-sampler", n=1, seed=1).version == 1
        wait_until(lambda: "tiny-sampler:2" in hanmo.admin.workers()[0].failed_loads)


def test_concurrent_alias_moves_end_consistent(
    tiny: Settings, tiny_v2: Path, tiny_v3: Path
) -> None:
    register_directory(tiny, tiny_v2, None)
    register_directory(tiny, tiny_v3, None)
    key = new_key(tiny, "admin")
    with live_api(tiny) as http:
        hanmo = client_for(http, key)
        with ThreadPoolExecutor(2) as pool:  # no worker yet: both stay requested
            moves = list(
                pool.map(
                    lambda v: hanmo.admin.set_alias("tiny-sampler", "production", v, wait_s=0),
                    [2, 3],
                )
            )
        assert all(m.state == "pending" for m in moves)
        history = hanmo.admin.alias_history("tiny-sampler", "production")
        requested = [e for e in history if e.action == "move-requested"]
        assert sorted(e.to.version or 0 for e in requested) == [2, 3]
        last = requested[-1].to.version
        alias = hanmo.admin.alias("tiny-sampler", "production")
        assert alias.version == 1
        assert alias.pending
        assert alias.pending.version == last
        with worker_thread(tiny):
            wait_until(
                lambda: hanmo.admin.alias("tiny-sampler", "production").state == "ready",
                timeout_s=20,
            )
            assert hanmo.admin.alias("tiny-sampler", "production").version == last
            assert hanmo.sample("tiny-sampler", n=1, seed=1).version == last
        actions = [e.action for e in hanmo.admin.alias_history("tiny-sampler", "production")]
    assert actions == ["set", "move-requested", "move-requested", "moved"]


def test_canary_splits_by_seed_and_a_pinned_version_bypasses_it(
    tiny: Settings, tiny_v2: Path
) -> None:
    register_directory(tiny, tiny_v2, None)
    key = new_key(tiny, "admin")
    with worker_thread(tiny), live_api(tiny) as http:
        hanmo = client_for(http, key)
        alias = hanmo.admin.set_alias("tiny-sampler", "production", 1, canary=(2, 0.25))
        assert (alias.version, alias.canary, alias.canary_weight) == (1, 2, 0.25)
        seeds = range(120)
        first = {s: hanmo.sample("tiny-sampler", n=1, seed=s).version for s in seeds}
        again = {s: hanmo.sample("tiny-sampler", n=1, seed=s).version for s in seeds[:30]}
        pinned = {hanmo.sample("tiny-sampler", n=1, seed=s, version=1).version for s in seeds[:30]}
        keyed = {
            hanmo.sample("tiny-sampler", n=1, routing_key="user-42").version for _ in range(10)
        }
        share = sum(v == 2 for v in first.values()) / len(first)
        history = hanmo.admin.alias_history("tiny-sampler", "production")
    assert 0.1 < share < 0.45, share
    assert all(first[s] == again[s] for s in again)  # sticky
    assert pinned == {1}
    assert len(keyed) == 1
    assert history[-1].to.model_dump() == {"version": 1, "canary": 2, "canary_weight": 0.25}


def test_cli_keys_promote_and_rollback(tiny: Settings, tiny_v2: Path) -> None:
    register_directory(tiny, tiny_v2, None)
    env = settings_env(tiny)

    def hanmo(*args: str) -> dict:  # type: ignore[type-arg]
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    new_key(tiny, "admin")  # the last admin key cannot be revoked: keep another one
    created = hanmo("keys", "create", "--scope", "admin", "--name", "ops")
    assert created["key"].startswith("hm_")
    assert created["scope"] == "admin"
    assert hanmo("models", "promote", "tiny-sampler", "2", "--now")["version"] == 2
    assert hanmo("models", "rollback", "tiny-sampler", "--now")["version"] == 1
    assert hanmo("keys", "revoke", created["key_id"])["revoked_at"] is not None
    with live_api(tiny) as http:
        refused = http.get("/admin/keys", headers={"Authorization": f"Bearer {created['key']}"})
    assert refused.status_code == 401


def test_register_by_remote_uri_inside_a_root(tiny: Settings, tiny_v2: Path) -> None:
    import fsspec

    settings = tiny.model_copy(update={"register_roots": ["memory://imports"]})
    memory = fsspec.filesystem("memory")
    for path in tiny_v2.iterdir():
        memory.pipe(f"/imports/tiny/{path.name}", path.read_bytes())
    memory.pipe("/imports-evil/tiny/card.json", (tiny_v2 / "card.json").read_bytes())
    key = new_key(settings, "admin")
    with worker_thread(settings), live_api(settings) as http:
        hanmo = client_for(http, key)
        for uri in ("memory://imports-evil/tiny", "memory://imports/../imports-evil/tiny"):
            with pytest.raises(ApiError) as refused:
                hanmo.admin.register_uri("tiny-sampler", uri)
            assert refused.value.status == 422
        version = hanmo.admin.register_uri("tiny-sampler", "memory://imports/tiny")
    assert (version.version, version.status) == (2, "READY")
    assert version.artifact_uri.startswith(settings.resolved_artifact_root())
    assert (Path(version.artifact_uri) / "model.onnx").read_bytes() == (
        tiny_v2 / "model.onnx"
    ).read_bytes()
