"""Artifacts in S3 (issue 47, item 4), on a real S3 server: moto's, on loopback, started here.
An admin upload lands in the bucket, a worker whose home is empty checks it and serves it from
there (downloading it into its cache), and the answer is byte-identical to the same model
served from a local artifact root. The registry records artifacts relative to the root, so a
registry whose artifacts are copied elsewhere (here: from a local root into S3) serves on; a
row holding an absolute location keeps it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hanmo_client import Hanmo
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy import select, update

from app.registry import artifacts
from app.registry.cards import read_card
from app.registry.db import make_engine, make_sessionmaker
from app.registry.tables import ModelVersion
from app.runtime.check_process import storage_environment
from app.services.registration import register_directory
from app.settings import Settings
from tests.api.test_admin import new_key
from tests.helpers import free_port, fresh_settings, live_api, wait_until, worker_thread
from tests.worker.processes import ApiProcess, worker_processes
from training import tiny_sampler

BUCKET = "hanmo-artifacts"
REGION = "eu-west-1"  # moto, like S3, refuses us-east-1 as an explicit location constraint
SECRET = "moto-secret-never-shown"
SAMPLE = "/v1/models/tiny-sampler/sample"
BODY = {"n": 16, "seed": 7}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, with one bucket."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        fs, _ = artifacts.open_fs(f"s3://{BUCKET}", on_s3(Settings(), endpoint, ""))
        fs.mkdir(BUCKET)
        yield endpoint
    finally:
        server.stop()


def on_s3(settings: Settings, endpoint: str, root: str) -> Settings:
    """`settings` with its artifact root in the bucket and the HANMO_S3_* settings for moto."""
    return settings.model_copy(
        update={
            "artifact_root": root,
            "s3_endpoint_url": endpoint,
            "s3_access_key_id": "moto-key",
            "s3_secret_access_key": SecretStr(SECRET),
            "s3_region": REGION,
        }
    )


def answers(http: httpx.Client, **extra: object) -> tuple[bytes, dict[str, object]]:
    """The sample sheet as raw PNG, and the JSON answer's samples, digest and seed."""
    png = http.post(SAMPLE, json={**BODY, **extra}, headers={"accept": "image/png"})
    assert png.status_code == 200, png.text
    assert png.headers["content-type"] == "image/png"
    drawn = http.post(SAMPLE, json={**BODY, **extra, "format": "array"})
    assert drawn.status_code == 200, drawn.text
    body = drawn.json()
    return png.content, {k: body[k] for k in ("samples", "sha256", "seed", "version")}


def stored_uris(settings: Settings) -> dict[int, str]:
    """version -> the artifact URI the registry database holds for it."""
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine)() as session:
        rows = session.execute(select(ModelVersion.version, ModelVersion.artifact_uri)).all()
    engine.dispose()
    return dict(rows)


def live(base: str) -> bool:
    try:
        return httpx.get(f"{base}/livez", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_upload_check_alias_and_sample_from_s3_on_a_worker_with_an_empty_home(
    settings: Settings, tiny_dir: Path, s3_endpoint: str, tmp_path: Path
) -> None:
    v2_dir = tiny_sampler.build(tmp_path / "v2" / "tiny-sampler", seed=1)
    register_directory(settings, tiny_dir, "production")  # the reference: a local root
    register_directory(settings, v2_dir, None)
    with worker_thread(settings), live_api(settings) as http:
        local_png, local_json = answers(http, version=2)

    emptied = fresh_settings(tmp_path / "s3", settings.redis_url, settings.database_url)
    api_settings = on_s3(emptied, s3_endpoint, f"s3://{BUCKET}/upload").model_copy(
        update={"port": free_port()}
    )
    worker_home = tmp_path / "worker-home"  # nothing cached, no local artifacts
    worker_settings = api_settings.model_copy(update={"home": worker_home})
    base = f"http://127.0.0.1:{api_settings.port}"
    key = new_key(api_settings, "admin")
    fs, _ = artifacts.open_fs(f"s3://{BUCKET}", api_settings)
    # v1 as `hanmo models register` stores it (straight into the bucket): a worker reads the
    # checks stream only while it serves a version
    register_directory(api_settings, tiny_dir, "production")
    assert fs.exists(f"{BUCKET}/upload/tiny-sampler/1/model.onnx")
    api = ApiProcess(api_settings, workers=1)  # both read HANMO_S3_* from their environment
    try:
        with worker_processes(worker_settings):
            wait_until(lambda: live(base), timeout_s=120, awaiting="the api process to live")
            with Hanmo(base, api_key=key, timeout_s=180) as hanmo:
                second = hanmo.admin.upload_version("tiny-sampler", v2_dir, wait_s=120)
                assert (second.version, second.status) == (2, "READY"), second.status_message
                assert second.artifact_uri == f"s3://{BUCKET}/upload/tiny-sampler/2"
                moved = hanmo.admin.set_alias("tiny-sampler", "production", 2)
                assert (moved.version, moved.state) == (2, "ready")
                with httpx.Client(base_url=base, timeout=60) as http:
                    s3_png, s3_json = answers(http)  # through the alias
                hanmo.admin.delete_version("tiny-sampler", 1)  # its objects leave the bucket
    finally:
        api.stop()
    assert s3_png == local_png
    assert s3_json == local_json
    assert stored_uris(api_settings) == {2: "tiny-sampler/2"}  # relative to the root
    fs.invalidate_cache()  # s3fs caches listings; the api process deleted since
    assert fs.ls(f"{BUCKET}/upload/tiny-sampler") == [f"{BUCKET}/upload/tiny-sampler/2"]
    # the worker read the graphs from the bucket into its cache: nothing from a local root
    for directory in (tiny_dir, v2_dir):
        assert (worker_home / "cache" / read_card(directory).digest() / ".complete").exists()
    assert not (worker_home / "artifacts").exists()
    assert not (emptied.home / "artifacts").exists()


def test_a_registry_serves_on_after_its_artifacts_move_from_a_local_root_to_s3(
    settings: Settings, tiny_dir: Path, s3_endpoint: str, tmp_path: Path
) -> None:
    register_directory(settings, tiny_dir, "production")
    v2 = tiny_sampler.build(tmp_path / "v2" / "tiny-sampler", seed=1)
    register_directory(settings, v2, None)
    old_root = Path(settings.resolved_artifact_root())
    # v2 as a registry written before relative URIs holds it: an absolute path, outside the root
    legacy = shutil.copytree(old_root / "tiny-sampler" / "2", tmp_path / "legacy" / "2")
    engine = make_engine(settings.resolved_database_url())
    with make_sessionmaker(engine).begin() as session:
        session.execute(
            update(ModelVersion).where(ModelVersion.version == 2).values(artifact_uri=str(legacy))
        )
    engine.dispose()
    assert stored_uris(settings) == {1: "tiny-sampler/1", 2: str(legacy)}
    with worker_thread(settings), live_api(settings) as http:
        before = answers(http), answers(http, version=2)

    # the artifact root moves into the bucket; the old one is gone
    moved = on_s3(settings, s3_endpoint, f"s3://{BUCKET}/moved/")
    fs, _ = artifacts.open_fs(f"s3://{BUCKET}", moved)
    fs.put(str(old_root / "tiny-sampler"), f"{BUCKET}/moved/tiny-sampler", recursive=True)
    assert fs.exists(f"{BUCKET}/moved/tiny-sampler/1/model.onnx")
    shutil.rmtree(old_root)
    key = new_key(moved, "admin")
    v3 = tiny_sampler.build(tmp_path / "v3" / "tiny-sampler", seed=2)
    # an in-process worker: its check process gets the S3 settings from the worker's
    # settings alone (nothing in this process's environment names moto)
    assert storage_environment(moved)["HANMO_S3_SECRET_ACCESS_KEY"] == SECRET
    with worker_thread(moved), live_api(moved) as http:
        after = answers(http), answers(http, version=2)
        with Hanmo(str(http.base_url), api_key=key, timeout_s=180) as hanmo:
            shown = {v.version: v.artifact_uri for v in hanmo.admin.versions("tiny-sampler")}
            third = hanmo.admin.upload_version("tiny-sampler", v3, wait_s=120)
    assert after == before
    assert shown == {1: f"s3://{BUCKET}/moved/tiny-sampler/1", 2: str(legacy)}
    assert (third.version, third.status) == (3, "READY"), third.status_message
    assert fs.exists(f"{BUCKET}/moved/tiny-sampler/3/model.onnx")
    assert stored_uris(moved) == {1: "tiny-sampler/1", 2: str(legacy), 3: "tiny-sampler/3"}
    assert not old_root.exists()


def test_storage_options_reach_s3_urls_only_and_the_secret_stays_hidden() -> None:
    settings = on_s3(Settings(), "http://127.0.0.1:9", "s3://bucket/root")
    options = artifacts.storage_options("s3://bucket/root/m/1", settings)
    assert options == {
        "endpoint_url": "http://127.0.0.1:9",
        "key": "moto-key",
        "secret": SECRET,
        "client_kwargs": {"region_name": REGION},
    }
    assert artifacts.storage_options("/var/lib/hanmo/artifacts/m/1", settings) == {}
    assert artifacts.storage_options("memory://x/m/1", settings) == {}
    unset = on_s3(Settings(), "", "s3://bucket/root")
    unset = unset.model_copy(
        update={"s3_access_key_id": "", "s3_region": "", "s3_secret_access_key": SecretStr("")}
    )
    assert artifacts.storage_options("s3://bucket/m/1", unset) == {}  # botocore's own
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())
    assert artifacts.located("m/1", settings) == "s3://bucket/root/m/1"
    for absolute in ("s3://other/m/1", "file:///srv/m/1", "/srv/m/1", ""):
        assert artifacts.located(absolute, settings) == absolute
