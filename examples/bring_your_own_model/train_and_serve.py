"""Bring your own model to hanmo, end to end, through the public HTTP API only: train a VAE
and a deep ensemble in plain PyTorch (models.py), export them with `hanmo_client.export`,
check them with `hanmo models check`, upload them through the admin API, try each new version
pinned before any alias routes to it, promote it, and roll back. The walk-through is
docs/bring-your-own-model.md.

    hanmo up                                  # or any hanmo; it prints an admin key once
    pip install "hanmo-client[export]" scikit-learn
    python examples/bring_your_own_model/train_and_serve.py \\
        --api http://127.0.0.1:8000 --admin-key hm_… [--tiny]

It stops at the first step that fails, saying which; `--report FILE` writes every step it
took (JSON) for a test to read."""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hanmo_client import ApiError, Hanmo
from hanmo_client.export import export_predictive, export_sampler

from models import FEATURES, FULL, TINY, Z_DIM, Sizes, diabetes, train_ensemble, train_vae

ALIAS = "production"
SEED = 7  # samples depend only on the version, the seed and their index
COMMAND = "python examples/bring_your_own_model/train_and_serve.py"


class Journal:
    """Every step with its facts, printed as it happens and kept for --report."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []

    def step(self, name: str, **facts: Any) -> None:
        self.steps.append({"step": name, "at": time.time(), **facts})
        shown = " ".join(f"{k}={v}" for k, v in facts.items() if not isinstance(v, list | dict))
        print(f"{name}: {shown}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    sizes, journal = (TINY if args.tiny else FULL), Journal()
    try:
        with Hanmo(args.api, api_key=args.admin_key, timeout_s=120) as hanmo:
            serve_sampler(hanmo, args, sizes, journal)
            serve_predictive(hanmo, args, sizes, journal)
    finally:
        if args.report:
            args.report.write_text(json.dumps({"steps": journal.steps}, indent=1))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--api", default="http://127.0.0.1:8000", help="hanmo's base URL")
    p.add_argument("--admin-key", required=True, help="an admin API key (hm_…)")
    p.add_argument("--tiny", action="store_true", help="train for seconds (tests)")
    p.add_argument("--out", type=Path, default=Path("byo-models"), help="model directories")
    p.add_argument("--hanmo", default="hanmo", help="the hanmo command (for `models check`)")
    p.add_argument("--sampler-name", default="my-vae")
    p.add_argument("--predictive-name", default="my-ensemble")
    p.add_argument("--report", type=Path, help="write the steps taken here (JSON)")
    return p


# -- the sampler: two versions, each tried pinned, promoted; then a rollback --------------------


def serve_sampler(hanmo: Hanmo, args: argparse.Namespace, sizes: Sizes, journal: Journal) -> None:
    name = args.sampler_name
    first = release_sampler(hanmo, args, sizes, seed=0, journal=journal)
    second = release_sampler(hanmo, args, sizes, seed=1, journal=journal)
    back = hanmo.admin.rollback(name, ALIAS)
    after = hanmo.sample(name, n=4, seed=SEED, format="array")
    journal.step("rollback", model=name, alias=ALIAS, version=back.version, answered=after.version)
    if (back.version, after.samples) != first:
        raise SystemExit(f"rolled back, {name}@{ALIAS} answers v{after.version}, not v{first[0]}")
    journal.step("done", model=name, versions=[first[0], second[0]], alias_at=back.version)


def release_sampler(
    hanmo: Hanmo, args: argparse.Namespace, sizes: Sizes, seed: int, journal: Journal
) -> tuple[int, list[Any]]:
    """Train, export, check, upload, sample pinned, promote, sample by alias."""
    name = args.sampler_name
    vae, metrics = train_vae(sizes, seed)
    journal.step("train", model=name, seed=seed, **metrics)
    directory = export_sampler(
        vae.decoder,
        Z_DIM,
        args.out / name / f"seed{seed}",
        name=name,
        sample_shape=[8, 8],
        image=True,
        display_scale=4,
        description="Bernoulli VAE on binarised 8x8 digits (plain PyTorch, brought as is); "
        "x [N, 8, 8] are the decoder's pixel probabilities for z ~ N(0, I)",
        data="scikit-learn load_digits, binarised (level > 7), first 1500 of a seeded order",
        metrics=metrics,
        seed=seed,
        command=COMMAND + (" --tiny" if args.tiny else ""),
    )
    version = check_and_upload(hanmo, args, directory, "sampler", journal)
    aliases = hanmo.model(name).aliases
    with pinned_request(journal, name, version, aliases):
        pinned = hanmo.sample(name, n=4, seed=SEED, format="array", version=version)
    journal.step(
        "sample pinned",
        model=name,
        version=pinned.version,
        alias=pinned.alias,
        aliases_before=aliases,
        shape=pinned.sample_shape,
        samples=pinned.samples,
    )
    promote(hanmo, name, version, journal)
    routed = hanmo.sample(name, n=4, seed=SEED, format="array")
    same = routed.samples == pinned.samples
    journal.step(
        "sample by alias",
        model=name,
        alias=routed.alias,
        version=routed.version,
        same_as_pinned=same,
        samples=routed.samples,
    )
    if routed.version != version or not same:
        raise SystemExit(f"{name}@{ALIAS} answered v{routed.version}; pinned v{version} differs")
    return version, pinned.samples or []


# -- the predictive model ----------------------------------------------------------------------


def serve_predictive(
    hanmo: Hanmo, args: argparse.Namespace, sizes: Sizes, journal: Journal
) -> None:
    name = args.predictive_name
    members, x_train, metrics = train_ensemble(sizes, seed=0)
    journal.step("train", model=name, members=len(members), **metrics["this_model"])
    directory = export_predictive(
        members,
        args.out / name / "seed0",
        name=name,
        task="regression",
        input_dim=len(FEATURES),
        features=FEATURES,
        targets=["disease_progression"],
        target_units="score",
        method="ensemble",
        x_train=x_train,
        description=f"Diabetes progression a year on: a deep ensemble of {len(members)} "
        "heteroscedastic MLPs (plain PyTorch, brought as is)",
        data="scikit-learn load_diabetes(scaled=False), 80% of a seeded order",
        metrics=metrics,
        seed=0,
        command=COMMAND + (" --tiny" if args.tiny else ""),
    )
    version = check_and_upload(hanmo, args, directory, "predictive", journal)
    rows = [dict(zip(FEATURES, map(float, row), strict=True)) for row in diabetes()[2][:3]]
    aliases = hanmo.model(name).aliases
    with pinned_request(journal, name, version, aliases):
        pinned = hanmo.predict(name, inputs=rows, interval=[0.5, 0.9], version=version)
    journal.step(
        "predict pinned",
        model=name,
        version=pinned.version,
        alias=pinned.alias,
        predictions=[p.model_dump(by_alias=True) for p in pinned.predictions],
    )
    promote(hanmo, name, version, journal)
    routed = hanmo.predict(name, inputs=rows, interval=[0.5, 0.9])
    journal.step(
        "predict by alias",
        model=name,
        version=routed.version,
        alias=routed.alias,
        same_as_pinned=routed.predictions == pinned.predictions,
    )


# -- the steps every model takes ---------------------------------------------------------------


def check_and_upload(
    hanmo: Hanmo, args: argparse.Namespace, directory: Path, kind: str, journal: Journal
) -> int:
    """`hanmo models check DIR` (every problem at once), then the upload; the new version."""
    done = subprocess.run(
        [*shlex.split(args.hanmo), "models", "check", str(directory)],
        capture_output=True,
        text=True,
    )
    lines = done.stdout.strip().splitlines()
    journal.step("check", directory=str(directory), ok=done.returncode == 0, lines=lines)
    if done.returncode != 0:
        problems = "\n".join(lines) or done.stderr[-2000:]
        raise SystemExit(f"hanmo models check {directory} found problems:\n{problems}")
    card = json.loads((directory / "card.json").read_text())
    try:
        hanmo.admin.create_model(card["name"], kind, card["description"])
    except ApiError as exc:
        if exc.status != 409:  # 409: the model exists, from an earlier run
            raise
    info = hanmo.admin.upload_version(card["name"], directory)
    if info.status == "PENDING":
        info = hanmo.admin.wait_ready(card["name"], info.version)
    journal.step("upload", model=card["name"], version=info.version, status=info.status)
    if info.status != "READY":
        raise SystemExit(f"{card['name']} v{info.version} is {info.status}: {info.status_message}")
    return info.version


@contextmanager
def pinned_request(
    journal: Journal, name: str, version: int, aliases: dict[str, int]
) -> Iterator[None]:
    """Around a request naming the new version before any alias routes to it (try before you
    promote): a refusal stops the run, saying so."""
    try:
        yield
    except ApiError as exc:
        journal.step(
            "pinned request refused",
            model=name,
            version=version,
            status=exc.status,
            detail=exc.detail,
            aliases_before=aliases,
        )
        raise SystemExit(f"{name} v{version}, pinned while {ALIAS} is {aliases}: {exc}") from exc


def promote(hanmo: Hanmo, name: str, version: int, journal: Journal) -> None:
    """Move the alias to `version`: workers load and warm it before the alias routes to it."""
    moved = hanmo.admin.set_alias(name, ALIAS, version)
    journal.step("promote", model=name, alias=ALIAS, version=moved.version, state=moved.state)
    if moved.version != version:
        raise SystemExit(f"{name}@{ALIAS} is still at v{moved.version}: {moved.last_error}")


if __name__ == "__main__":
    sys.exit(main())
