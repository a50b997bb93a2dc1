"""The `hanmo` command: api, worker, migrate, models, keys, up."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hanmo_client.schemas import DEFAULT_ALIAS

from app import logs
from app.registry.local import in_transaction
from app.services.registration import register_directory, register_shipped
from app.settings import Settings, get_settings

if TYPE_CHECKING:
    pass


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logs.configure()
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    result: int = args.run(args)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hanmo", description=__doc__)
    commands = parser.add_subparsers(title="commands")

    api = commands.add_parser("api", help="run the HTTP api (uvicorn)")
    api.add_argument("--host")
    api.add_argument("--port", type=int)
    _api_workers_arg(api)
    api.set_defaults(run=_api)

    worker = commands.add_parser("worker", help="run a pool of workers")
    _worker_args(worker)
    worker.set_defaults(run=_worker)

    migrate = commands.add_parser("migrate", help="create or upgrade the registry schema")
    migrate.set_defaults(run=_migrate)

    models = commands.add_parser("models", help="the model registry").add_subparsers()
    register = models.add_parser("register", help="register a model directory")
    register.add_argument("directory", type=Path)
    register.add_argument("--alias", help="point this alias at the version, e.g. production")
    register.set_defaults(run=_register)
    shipped = models.add_parser(
        "register-shipped",
        help="register models/<name>/<version>/ and alias each model's newest `production` "
        "unless it has that alias already (what `hanmo up` and docker compose run)",
    )
    shipped.add_argument(
        "models_dir", type=Path, nargs="?", default=None, help="default HANMO_MODELS_DIR"
    )
    shipped.set_defaults(run=_register_shipped)
    check = models.add_parser(
        "check",
        help="check a model directory as registration would (files, sha256, the kind's "
        "contract, runs on random inputs), locally: print every problem, exit 1 if any",
    )
    check.add_argument("directory", type=Path)
    check.set_defaults(run=_check)
    listing = models.add_parser("list", help="list registered models")
    listing.set_defaults(run=_list_models)
    promote = models.add_parser(
        "promote", help="point an alias at a version (workers load it before it is routed)"
    )
    promote.add_argument("name")
    promote.add_argument("version", type=int)
    promote.add_argument("--alias", default=DEFAULT_ALIAS)
    promote.add_argument("--canary", type=int, help="a canary version for part of the traffic")
    promote.add_argument("--weight", type=float, default=0.1, help="the canary's share")
    promote.add_argument(
        "--now", action="store_true", help="route at once, without waiting for a worker"
    )
    promote.set_defaults(run=_promote)
    rollback = models.add_parser("rollback", help="move an alias back to its previous version")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default=DEFAULT_ALIAS)
    rollback.add_argument("--now", action="store_true")
    rollback.set_defaults(run=_rollback)

    keys = commands.add_parser("keys", help="API keys").add_subparsers()
    create = keys.add_parser("create", help="create a key; its secret is printed once")
    create.add_argument("--scope", choices=["admin", "infer"], default="infer")
    create.add_argument("--name", default="")
    create.add_argument("--expires-in", type=int, default=None, help="seconds")
    create.set_defaults(run=_keys_create)
    revoke = keys.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=_keys_revoke)
    key_list = keys.add_parser("list", help="list keys (never their secrets)")
    key_list.set_defaults(run=_keys_list)

    up = commands.add_parser("up", help="everything on one machine with embedded defaults")
    _worker_args(up)
    up.add_argument(
        "--models-dir", type=Path, default=None, help="default HANMO_MODELS_DIR (./models)"
    )
    _api_workers_arg(up)
    up.set_defaults(run=_up)
    return parser


def _api_workers_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="api processes on the one port (default HANMO_API_WORKERS; 0: half the cores, 1-4)",
    )


def _worker_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default=None,
        help="cpu, cuda:0, or a comma list (cuda:0,cuda:1); default HANMO_DEVICE",
    )
    parser.add_argument("--replicas", type=int, default=1, help="processes per device")
    parser.add_argument(
        "--models",
        default=None,
        help="comma list of model or model:version to serve (default: aliased)",
    )


def _api(args: argparse.Namespace) -> int:
    import uvicorn

    from app.api.exposition import prepare_multiprocess_dir, remove_multiprocess_dir
    from app.up import api_processes

    settings = get_settings()
    if not _redis_url_parses(settings):
        return 2
    processes = api_processes(args.workers, settings)
    # several processes share their metrics through files (app/api/exposition.py)
    metrics_dir = prepare_multiprocess_dir(processes)
    try:
        uvicorn.run(  # several processes: uvicorn's supervisor, each one its own reply listener
            "app.api.main:create_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            loop=settings.api_loop,
            workers=processes,
            log_config=logs.config(),  # each api process logs as hanmo's do (app/logs.py)
            log_level="warning",
            access_log=False,  # hanmo's own access lines instead (app/api/access.py)
        )
    finally:
        remove_multiprocess_dir(metrics_dir)
    return 0


def _worker(args: argparse.Namespace) -> int:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        print(
            "hanmo worker needs ONNX Runtime: pip install 'hanmo[worker]' (CPU) "
            "or 'hanmo[cuda]' (NVIDIA GPU)",
            file=sys.stderr,
        )
        return 2
    from app.worker.pool import run_pool

    settings = get_settings()
    if not _redis_url_parses(settings):
        return 2
    devices = (args.device or settings.device).split(",")
    run_pool(settings, devices, args.replicas, args.models.split(",") if args.models else None)
    return 0


def _redis_url_parses(settings: Settings) -> bool:
    """A HANMO_REDIS_URL no client can be made from stops `hanmo api` and `hanmo worker` here,
    said once, not in each api process or worker slot (which the pool would restart forever).
    Parsing only: a Redis that is down does not stop a start."""
    from app.redis_conn import check_url

    try:
        check_url(settings.resolved_redis_url())
    except ValueError as exc:
        print(f"error: HANMO_REDIS_URL: {exc}", file=sys.stderr)
        return False
    return True


def _migrate(_: argparse.Namespace) -> int:
    from app.registry.db import upgrade

    upgrade(get_settings().resolved_database_url())
    return 0


def _register(args: argparse.Namespace) -> int:
    """Every problem of the directory (each file's sha256, the kind's contract) at once."""
    from app.errors import HanmoError

    try:
        served = register_directory(get_settings(), args.directory, args.alias)
    except HanmoError as error:
        for problem in error.extensions.get("problems") or [error.detail]:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    print(
        f"registered {served.model} version {served.version} sha256 {served.sha256}"
        + (f" alias {args.alias}" if args.alias else "")
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    """No database, no Redis: the directory alone, on CPU."""
    from app.runtime.checks import directory_problems

    card, problems = directory_problems(args.directory)
    for problem in problems:
        print(problem)
    if problems or card is None:
        return 1
    graphs = ", ".join(f"{role} ({spec.file})" for role, spec in card.graphs.items())
    print(f"ok: {card.name} ({card.kind}), {graphs}")
    return 0


def _list_models(_: argparse.Namespace) -> int:
    from app.registry import service
    from app.registry.db import make_engine, make_sessionmaker

    engine = make_engine(get_settings().resolved_database_url())
    with make_sessionmaker(engine)() as session:
        for model in service.describe_all(session):
            versions = ", ".join(f"v{v['version']} {v['status']}" for v in model["versions"])
            print(
                f"{model['name']} ({model['kind']}): {versions}; aliases "
                f"{json.dumps(model['aliases'])}"
            )
    return 0


def _transaction(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """A registry change: run it, then tell workers and api replicas the registry changed."""
    settings = get_settings()
    result = in_transaction(settings, fn, *args, **kwargs)
    _bump_generation(settings)
    return result


def _bump_generation(settings: Settings) -> None:
    from app.queue import keys
    from app.redis_conn import sync_client

    try:
        client = sync_client(settings.resolved_redis_url())
        client.incr(keys.REGISTRY_GENERATION)
        client.close()
    except Exception:  # no Redis reachable: workers notice at their next registry poll
        pass


def _report(call, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
    from app.errors import HanmoError

    try:
        result = call(*args, **kwargs)
    except HanmoError as error:
        print(f"error: {error.detail}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


def _promote(args: argparse.Namespace) -> int:
    from app.registry import aliases

    target = aliases.Target(args.version, args.canary, args.weight if args.canary else 0.0)
    return _report(
        _transaction,
        aliases.request_alias,
        "cli",
        args.name,
        args.alias,
        target,
        immediate=args.now,
        action="canary" if args.canary else "move",
    )


def _rollback(args: argparse.Namespace) -> int:
    from app.registry import aliases

    return _report(_transaction, aliases.rollback, "cli", args.name, args.alias, immediate=args.now)


def _keys_create(args: argparse.Namespace) -> int:
    from app.registry import apikeys

    return _report(_transaction, apikeys.create, "cli", args.scope, args.name, args.expires_in)


def _keys_revoke(args: argparse.Namespace) -> int:
    from app.registry import apikeys

    return _report(_transaction, apikeys.revoke, "cli", args.key_id)


def _keys_list(_: argparse.Namespace) -> int:
    from app.registry import apikeys

    return _report(in_transaction, get_settings(), apikeys.list_keys)  # a read: no bump


def _register_shipped(args: argparse.Namespace) -> int:
    from app.up import say

    settings = get_settings()
    register_shipped(settings, args.models_dir or settings.models_dir, say)
    return 0


def _up(args: argparse.Namespace) -> int:
    from app.up import up

    return up(args)


if __name__ == "__main__":
    sys.exit(main())
