"""Which of hanmo's own files one style-transfer request runs through, and how many distinct
calls cross from one package of `app` to another: the figure issue 45 gives "before" (24 files,
57 cross-package calls, counted another way) and asks again "after".

Runs the api (uvicorn) and a worker in threads of this process on an embedded Redis and a
SQLite registry, sends one warm-up request, then profiles every thread while one JSON style
request (4 references, 3 characters) is answered. Counted: the files under app/ whose
functions ran, and the distinct (calling function -> called function) pairs whose two
functions sit in different packages of `app` (app.api.routes and app.api count as two).

    python scripts/request_path.py            # prints the files and the pair count
    python scripts/request_path.py --pairs    # and every cross-package pair
"""

from __future__ import annotations

import argparse
import base64
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
APP = str(ROOT / "app") + "/"
REFS = {"永": "yong.png", "和": "he.png", "书": "shu.png", "法": "fa.png"}


def module_of(filename: str) -> str | None:
    if not filename.startswith(APP):
        return None
    parts = Path(filename[len(str(ROOT)) + 1 :]).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    return module.rpartition(".")[0] or module


class Recorder:
    def __init__(self) -> None:
        self.files: set[str] = set()
        self.pairs: set[tuple[str, str]] = set()
        self.on = False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.on or event != "call":
            return
        callee = module_of(frame.f_code.co_filename)
        if callee is None:
            return
        self.files.add(frame.f_code.co_filename[len(str(ROOT)) + 1 :])
        back = frame.f_back
        while back is not None and module_of(back.f_code.co_filename) is None:
            back = back.f_back  # through the framework to the nearest app frame
        caller = None if back is None else module_of(back.f_code.co_filename)
        if caller is not None and package_of(caller) != package_of(callee):
            self.pairs.add(
                (f"{caller}.{back.f_code.co_name}", f"{callee}.{frame.f_code.co_name}")  # type: ignore[union-attr]
            )


def _import(*choices: tuple[str, str]) -> Callable[..., Any]:
    """The first of (module, name) that exists: the script runs on trees before and after
    the services moved."""
    import importlib

    for module, name in choices:
        try:
            return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    raise ImportError(choices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", action="store_true", help="list every cross-package pair")
    args = parser.parse_args()

    import httpx
    import uvicorn

    from app.api.main import create_app
    from app.redis_conn import EmbeddedRedis, sync_client
    from app.registry.db import make_engine, make_sessionmaker, upgrade
    from app.settings import Settings
    from app.worker.main import Worker

    register_directory = _import(
        ("app.services.registration", "register_directory"),
        ("app.registry.local", "register_directory"),
    )
    home = Path(tempfile.mkdtemp(prefix="hanmo-path-"))
    redis = EmbeddedRedis(home / "redis")
    redis.start()
    database = f"sqlite:///{home / 'registry.db'}"
    upgrade(database)
    settings = Settings(home=home, database_url=database, redis_url=redis.url)
    register_directory(settings, ROOT / "models" / "glyph-style" / "1", "production")
    recorder = Recorder()  # on every thread from here, counting only while `on`
    threading.setprofile(recorder)
    sys.setprofile(recorder)
    engine = make_engine(database)
    worker = Worker(settings, "path", "cpu", 1, make_sessionmaker(engine), sync_client(redis.url))
    threading.Thread(target=worker.run, daemon=True).start()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level="warning", access_log=False)
    )
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    examples = ROOT / "docs" / "examples" / "ma-shan-zheng"
    refs = [
        {"image": base64.b64encode((examples / f).read_bytes()).decode(), "char": c}
        for c, f in REFS.items()
    ]
    body = {"references": refs, "text": "永和书"}
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1/models/glyph-style/style-transfer"
    with httpx.Client(timeout=60) as client:
        for _ in range(60):  # until the worker has loaded the model
            if client.post(url, json=body).status_code == 200:
                break
            time.sleep(0.5)
        recorder.on = True
        answer = client.post(url, json=body)
        recorder.on = False
    sys.setprofile(None)
    threading.setprofile(None)  # type: ignore[arg-type]
    assert answer.status_code == 200, answer.text
    server.should_exit = True
    worker.stopping.set()
    time.sleep(0.5)
    redis.stop()
    print(f"files under app/ that ran: {len(recorder.files)}")
    for name in sorted(recorder.files):
        print(f"  {name}")
    print(f"distinct cross-package calls: {len(recorder.pairs)}")
    if args.pairs:
        for caller, callee in sorted(recorder.pairs):
            print(f"  {caller} -> {callee}")


if __name__ == "__main__":
    main()
