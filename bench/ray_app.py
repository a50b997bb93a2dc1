"""The second peer: Ray Serve serving the same model directory as hanmo, for bench/peer.py. Runs
in its own venv (.venv-ray: ray[serve], onnxruntime, numpy, pillow, contourpy) with the
repository and clients/python on PYTHONPATH, like bench/litserve_app.py, and serves through the
very same API classes as the LitServe peer (`bench.litserve_app.KINDS`: hanmo's session wrapper,
noise, summaries and glyph PNGs), so its answers are hanmo's and LitServe's; they are checked
equal to hanmo's before any timing.

    python bench/ray_app.py MODEL_DIR PORT MAX_BATCH BATCH_WAIT_S THREADS TEMP_DIR

One replica behind Ray Serve's HTTP proxy on 127.0.0.1:PORT, path /predict, taking the same
request bodies as the LitServe peer. MAX_BATCH > 1 batches across requests with
`@serve.batch(max_batch_size=MAX_BATCH, batch_wait_timeout_s=BATCH_WAIT_S)` and lets the
replica hold 2 x MAX_BATCH requests (Ray's default of 5 ongoing requests would cap a batch at 5);
MAX_BATCH = 1 calls the model per request with Ray Serve's defaults, as LitServe's
`max_batch_size=1`. Ray starts a private local cluster: 2 CPUs, no dashboard, its files under
TEMP_DIR (bench/peer.py finds any process left behind by that path). SIGTERM shuts Serve and
the cluster down.
"""

from __future__ import annotations

import signal
import sys
import time
import types
from pathlib import Path
from typing import Any

import ray
from ray import serve
from starlette.requests import Request


class _LitAPI:
    """All that bench/litserve_app.py's classes take from `litserve.LitAPI`: their
    constructor's keyword arguments (LitServe's batching settings, unused here)."""

    def __init__(self, **kwargs: Any) -> None:
        pass


def peer_api(directory: Path, threads: int) -> Any:
    """The LitServe peer's API object for the card in `directory`, set up, without LitServe:
    `litserve` is a stand-in module, so the Ray venv runs the same decoding, model calls and
    post-processing as the LitServe peer."""
    if "litserve" not in sys.modules:
        sys.modules["litserve"] = types.ModuleType("litserve")
        sys.modules["litserve"].LitAPI = _LitAPI  # type: ignore[attr-defined]
    import json

    from bench.litserve_app import KINDS

    card = json.loads((directory / "card.json").read_text())
    api = KINDS[card["kind"]](directory, threads)
    api.setup("cpu")
    return api


def application(directory: Path, max_batch: int, wait_s: float, threads: int) -> Any:
    """The Serve application: one replica; batched across requests when `max_batch` > 1."""
    options: dict[str, Any] = {"num_replicas": 1, "ray_actor_options": {"num_cpus": 1}}
    if max_batch > 1:
        options["max_ongoing_requests"] = 2 * max_batch

    @serve.deployment(**options)
    class Peer:
        def __init__(self) -> None:
            self.api = peer_api(directory, threads)

        @serve.batch(max_batch_size=max(max_batch, 1), batch_wait_timeout_s=wait_s)
        async def batched(self, items: list[Any]) -> list[Any]:
            return list(self.api.run(items))

        async def __call__(self, request: Request) -> Any:
            item = self.api.decode_request(await request.json())
            out = await self.batched(item) if max_batch > 1 else self.api.run([item])[0]
            return self.api.encode_response(out)

    return Peer.bind()


def main() -> None:
    directory, port, max_batch, wait_s, threads, temp_dir = sys.argv[1:7]
    try:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="warning",
            object_store_memory=200 * 1024**2,
            _temp_dir=temp_dir,
        )
        # after ray.init, which installs a SIGTERM handler of its own: to the `finally` below
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        serve.start(http_options={"host": "127.0.0.1", "port": int(port)})
        app = application(Path(directory), int(max_batch), float(wait_s), int(threads))
        serve.run(app, name="peer", route_prefix="/predict")
        while True:
            time.sleep(3600)
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


if __name__ == "__main__":
    main()
