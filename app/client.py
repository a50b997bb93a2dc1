"""A Python client for hanmo's HTTP API (httpx), typed with the api's own pydantic schemas.

    from app.client import Hanmo
    with Hanmo("http://127.0.0.1:8000", api_key="hm_…") as hanmo:
        grid = hanmo.sample("vae-digits", n=16, seed=7, format="grid")
        hanmo.admin.set_alias("vae-digits", "production", version=2)

Errors come back as `ApiError` carrying the problem object (RFC 9457) the server sent.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from app.api.admin_schemas import (
    AliasInfo,
    AliasPut,
    Canary,
    KeyCreate,
    KeyInfo,
    ModelCreate,
    ModelInfo,
    ModelPage,
    ModelUpdate,
    RegisterByUri,
    VersionInfo,
)
from app.api.schemas import (
    JobRead,
    PredictRequest,
    SampleRequest,
    SampleResponse,
    StyleTransferRequest,
)
from app.registry.cards import read_card


class ApiError(Exception):
    """A non-2xx answer: `status`, and the server's problem object in `problem`."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}")

    @property
    def retry_after_s(self) -> float | None:
        value = self.problem.get("retry_after_s")
        return float(value) if value is not None else None


def _body(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


class Hanmo:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_s, transport=transport
        )
        self.admin = Admin(self)

    def __enter__(self) -> Hanmo:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:500]}
            raise ApiError(response.status_code, problem)
        return response

    # -- inference -----------------------------------------------------------------------------

    def sample(self, model: str, **options: Any) -> SampleResponse:
        body = SampleRequest(**options)
        response = self.request("POST", f"/v1/models/{model}/sample", json=_body(body))
        return SampleResponse.model_validate(response.json())

    def predict(self, model: str, **options: Any) -> dict[str, Any]:
        body = PredictRequest(**options)
        result: dict[str, Any] = self.request(
            "POST", f"/v1/models/{model}/predict", json=_body(body)
        ).json()
        return result

    def style_transfer(self, model: str, **options: Any) -> dict[str, Any]:
        body = StyleTransferRequest(**options)
        result: dict[str, Any] = self.request(
            "POST", f"/v1/models/{model}/style-transfer", json=_body(body)
        ).json()
        return result

    def submit(self, path: str, body: BaseModel) -> str:
        """POST with `Prefer: respond-async`; the job id."""
        response = self.request("POST", path, json=_body(body), headers={"Prefer": "respond-async"})
        return str(response.json()["job_id"])

    def job(self, job_id: str) -> JobRead:
        return JobRead.model_validate(self.request("GET", f"/v1/jobs/{job_id}").json())

    def wait(self, job_id: str, timeout_s: float = 60.0, poll_s: float = 0.1) -> JobRead:
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job.status in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                return job
            time.sleep(poll_s)

    def cancel(self, job_id: str) -> None:
        self.request("DELETE", f"/v1/jobs/{job_id}")

    def models(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/v1/models").json()["models"]
        return result


class Admin:
    """The /admin API (needs an `admin` key)."""

    def __init__(self, client: Hanmo) -> None:
        self.client = client

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        return response.json() if response.content else None

    def create_model(self, name: str, kind: str, description: str = "", **tags: str) -> ModelInfo:
        body = ModelCreate(name=name, kind=kind, description=description, tags=tags)
        return ModelInfo.model_validate(self._json("POST", "/admin/models", json=_body(body)))

    def list_models(self, limit: int = 50, offset: int = 0) -> ModelPage:
        params = {"limit": limit, "offset": offset}
        return ModelPage.model_validate(self._json("GET", "/admin/models", params=params))

    def update_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> ModelInfo:
        body = ModelUpdate(description=description, tags=tags)
        return ModelInfo.model_validate(
            self._json("PATCH", f"/admin/models/{name}", json=_body(body))
        )

    def delete_model(self, name: str) -> None:
        self._json("DELETE", f"/admin/models/{name}")

    def upload_version(
        self, name: str, directory: Path, sha256: str | None = None, wait_s: float = 30.0
    ) -> VersionInfo:
        """Upload a model directory (its card and every file the card names); waits up to
        `wait_s` for a worker's check (READY, or ApiError 422 when it fails)."""
        card = read_card(directory)
        handles = [(directory / f).open("rb") for f in card.checksums()]
        try:
            files: list[tuple[str, Any]] = [
                ("card", ("card.json", (directory / "card.json").read_bytes(), "application/json"))
            ]
            binary = "application/octet-stream"
            files += [("files", (Path(h.name).name, h, binary)) for h in handles]
            data = {"sha256": sha256} if sha256 else None
            view = self._json(
                "POST",
                f"/admin/models/{name}/versions",
                files=files,
                data=data,
                params={"wait_s": wait_s},
            )
        finally:
            for handle in handles:
                handle.close()
        return VersionInfo.model_validate(view)

    def register_uri(
        self, name: str, uri: str, sha256: str | None = None, wait_s: float = 30.0
    ) -> VersionInfo:
        body = RegisterByUri(uri=uri, sha256=sha256)
        return VersionInfo.model_validate(
            self._json(
                "POST",
                f"/admin/models/{name}/versions",
                json=_body(body),
                params={"wait_s": wait_s},
            )
        )

    def version(self, name: str, version: int) -> VersionInfo:
        return VersionInfo.model_validate(
            self._json("GET", f"/admin/models/{name}/versions/{version}")
        )

    def wait_ready(self, name: str, version: int, timeout_s: float = 60.0) -> VersionInfo:
        """Poll a PENDING version until a worker has checked it (READY or FAILED)."""
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.version(name, version)
            if info.status != "PENDING" or time.monotonic() > deadline:
                return info
            time.sleep(0.1)

    def archive_version(self, name: str, version: int) -> VersionInfo:
        return VersionInfo.model_validate(
            self._json("POST", f"/admin/models/{name}/versions/{version}/archive")
        )

    def delete_version(self, name: str, version: int) -> None:
        self._json("DELETE", f"/admin/models/{name}/versions/{version}")

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        canary: tuple[int, float] | None = None,
        wait_s: float = 30.0,
    ) -> AliasInfo:
        body = AliasPut(
            version=version,
            canary=Canary(version=canary[0], weight=canary[1]) if canary else None,
        )
        return AliasInfo.model_validate(
            self._json(
                "PUT",
                f"/admin/models/{name}/aliases/{alias}",
                json=_body(body),
                params={"wait_s": wait_s},
            )
        )

    def rollback(self, name: str, alias: str, wait_s: float = 30.0) -> AliasInfo:
        return AliasInfo.model_validate(
            self._json(
                "POST", f"/admin/models/{name}/aliases/{alias}/rollback", params={"wait_s": wait_s}
            )
        )

    def alias(self, name: str, alias: str) -> AliasInfo:
        return AliasInfo.model_validate(self._json("GET", f"/admin/models/{name}/aliases/{alias}"))

    def delete_alias(self, name: str, alias: str) -> None:
        self._json("DELETE", f"/admin/models/{name}/aliases/{alias}")

    def alias_history(self, name: str, alias: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json(
            "GET", f"/admin/models/{name}/aliases/{alias}/history"
        )
        return result

    def workers(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._json("GET", "/admin/workers")["workers"]
        return result

    def queues(self) -> dict[str, Any]:
        result: dict[str, Any] = self._json("GET", "/admin/queues")
        return result

    def create_key(self, scope: str, name: str = "", expires_in_s: int | None = None) -> KeyInfo:
        body = KeyCreate(scope=scope, name=name, expires_in_s=expires_in_s)
        return KeyInfo.model_validate(self._json("POST", "/admin/keys", json=_body(body)))

    def list_keys(self) -> list[KeyInfo]:
        return [KeyInfo.model_validate(k) for k in self._json("GET", "/admin/keys")]

    def revoke_key(self, key_id: str) -> KeyInfo:
        return KeyInfo.model_validate(self._json("DELETE", f"/admin/keys/{key_id}"))

    def audit(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if action:
            params["action"] = action
        result: list[dict[str, Any]] = self._json("GET", "/admin/audit", params=params)["events"]
        return result
