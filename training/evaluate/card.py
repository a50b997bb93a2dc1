"""Score a shipped glyph-style version again and write the result into its card, without
retraining (issue 52, items 2 and 4): the grid's k = 16 column (every cell, issue 5's raw
metrics, as ``training.evaluate.style.evaluate`` computes the others, which stay as they are)
and the ``rendered`` section (``training.evaluate.rendered.judge``), which the training job
writes at its end through the same functions; then the contact sheets (``training.style.job
.sheet``). Nothing else in the card changes.

    make eval-style                       # models/glyph-style/1, docs/models
    .venv/bin/python -m training.evaluate.card models/glyph-style/1 --draws 4 --threads 2

Needs the fonts of training/data/fetch_fonts.sh (the glyph bank is rendered, a few minutes, or
read from .cache/glyphs)."""

from __future__ import annotations

import argparse
import fcntl
import json
import time
from pathlib import Path
from typing import Any

from training.data import bank as banklib
from training.evaluate import rendered
from training.evaluate.style import evaluate
from training.style.job import OnnxStyle, sheet, sheet_title

NEW_K = 16
SIZES = rendered.EDGE_SIZES
CELLS = ("unseen_fonts_unseen_chars", "unseen_fonts_seen_chars", "seen_fonts_unseen_chars")


PARTS = (
    "k4",
    "k16",
    "seen",
    "k1",
    "k8",
    *(f"grid:{cell}" for cell in CELLS),
    "sheets",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.card")
    p.add_argument("directory", type=Path, nargs="?", default=Path("models/glyph-style/1"))
    p.add_argument("--docs", type=Path, default=Path("docs/models"))
    p.add_argument("--draws", type=int, default=rendered.DRAWS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="what to score, in order, the card written after each (processes given different "
        "parts may run side by side: each merges its own under a lock): kK (the rendered layer "
        "of the held-out fonts at k = K), seen (the seen fonts', k = 4), grid:CELL (the grid's "
        f"k = {NEW_K} column of CELL), sheets (the contact sheets); default: {','.join(PARTS)}",
    )
    p.add_argument(
        "--summary",
        action="store_true",
        help="print the card's rendered section as tables (what docs/models/glyph-style.md "
        "shows) and exit: nothing is computed",
    )
    args = p.parse_args(argv)
    path = args.directory / "card.json"
    if args.summary:
        print("\n".join(summary(json.loads(path.read_text())["metrics"])))
        return 0
    if args.draws < 1:
        p.error("--draws: at least 1")
    parts = [part for part in args.parts.split(",") if part]
    unknown = [part for part in parts if part not in PARTS and not part.startswith("k")]
    if unknown:
        p.error(f"--parts: unknown {unknown}; known: {', '.join(PARTS)}")
    started = time.time()
    card = json.loads(path.read_text())
    em_ratio = float(card["signature"]["em_ratio"])
    bank = banklib.shipped(args.threads, em_ratio)
    print(f"bank: {len(bank.fonts)} fonts, {time.time() - started:.0f}s", flush=True)
    generate = OnnxStyle(args.directory, bank, args.threads)
    truths = rendered.Truths(bank, em_ratio)
    log = lambda r: print(r, flush=True)  # noqa: E731
    for part in parts:
        t0 = time.time()
        if part == "sheets":
            _, sheets = evaluate(
                bank,
                generate,
                classify=None,
                ks=(4,),
                seed=card["seed"],
                judged_ks=(),
                cells=("unseen_fonts_unseen_chars",),
                log=lambda r: None,
            )
            for font, s in sheets.items():
                sheet(sheet_title(font), s, args.docs / f"{card['name']}-{font}.png")
        elif part.startswith("grid:"):
            cell = part.removeprefix("grid:")
            column, _ = evaluate(
                bank,
                generate,
                classify=None,
                ks=(NEW_K,),
                n_seen_chars=200,  # the training job's
                seed=card["seed"],
                judged_ks=(),
                cells=(cell,),
                log=log,
            )
            merge(
                path,
                ("grid", cell, f"k{NEW_K}"),
                column[cell][f"k{NEW_K}"],
                time.time() - t0,
                args.draws,
            )
        elif part == "seen":
            seen = rendered.one_per_group(bank)
            chars = bank.heldout_chars[: rendered.SEEN_CHARS]
            row = rendered.judge_cell(
                bank, generate, truths, seen, chars, 4, args.draws, log, full=False
            )
            merge(
                path,
                ("rendered", "seen_fonts_unseen_chars", "k4"),
                row,
                time.time() - t0,
                args.draws,
            )
        else:
            k = int(part.removeprefix("k"))
            held = bank.font_index("heldout")
            row = rendered.judge_cell(
                bank,
                generate,
                truths,
                held,
                bank.heldout_chars,
                k,
                args.draws,
                log,
                full=k == rendered.FULL_K,
            )
            merge(
                path,
                ("rendered", "unseen_fonts_unseen_chars", f"k{k}"),
                row,
                time.time() - t0,
                args.draws,
            )
        print(f"{part}: {time.time() - t0:.0f}s", flush=True)
    layer = json.loads(path.read_text())["metrics"].get("rendered", {})
    print(json.dumps(layer.get("targets"), indent=1), flush=True)
    print(f"wrote {path} ({time.time() - started:.0f}s)", flush=True)
    return 0


def merge(
    path: Path, where: tuple[str, ...], value: dict[str, Any], seconds: float, draws: int
) -> None:
    """Put ``value`` at metrics[where...] of the card on disk (read again under an exclusive
    lock, so processes scoring other parts keep theirs), the rendered section's protocol and
    targets brought up to date and the part's seconds recorded; nothing else changes."""
    with open(path) as lock:  # the card itself, locked (rewritten in place: the same file)
        fcntl.flock(lock, fcntl.LOCK_EX)
        card = json.loads(path.read_text())
        node = card["metrics"]
        for key in where[:-1]:
            node = node.setdefault(key, {})
        node[where[-1]] = value
        timing = card["metrics"].setdefault("evaluation_issue52_seconds", {})
        timing["/".join(where)] = round(seconds)
        layer = card["metrics"].get("rendered")
        if layer is not None:
            seen = layer.get("seen_fonts_unseen_chars", {}).get("k4", {}).get("per_font", {})
            layer["protocol"] = rendered.protocol(draws, rendered.SEEN_CHARS, len(seen))
            layer["targets"] = rendered.targets(layer.get("unseen_fonts_unseen_chars", {}))
            # protocol and targets first, then the cells
            card["metrics"]["rendered"] = {
                "protocol": layer.pop("protocol"),
                "targets": layer.pop("targets"),
                **layer,
            }
        path.write_text(json.dumps(card, indent=2) + "\n")


def _pm(row: dict[str, Any], digits: int = 4) -> str:
    return f"{row['mean']:.{digits}f} ± {row['sd']:.{digits}f}"


def summary(metrics: dict[str, Any]) -> list[str]:
    """Markdown tables of the rendered section (means ± sd over the draws)."""
    layer = metrics["rendered"]
    head = layer["unseen_fonts_unseen_chars"]
    out = [
        f"draws: {layer['protocol']['draws']}; HOG: {layer['protocol']['hog']}",
        "",
        "held-out fonts x unseen characters, k = 4:",
        "",
        "| font | raw L1 64 | rendered L1 64 | raw L1 / SSIM 128 (bicubic) | rendered L1 / SSIM"
        " / IoU 128 | edge width / truth's 64, 128, 256 (rendered; raw 64) | grey fraction / "
        "truth's 64 (rendered; raw) | HOG-KID raw | rendered | content copy | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = {"mean over fonts": head["k4"]["mean_over_fonts"], **head["k4"]["per_font"]}
    for name, r in rows.items():
        edges = ", ".join(f"{r[f'rendered_edges_{s}']['edge_width']['mean']:.2f}" for s in SIZES)
        raw_edges = f"{r['raw_edges_64']['edge_width']['mean']:.2f}"
        kid = r["hog_kid"]
        out.append(
            f"| {name} | {_pm(r['raw_64']['l1'])} | {_pm(r['rendered_64']['l1'])} | "
            f"{r['raw_128']['l1']['mean']:.4f} / {r['raw_128']['ssim']['mean']:.3f} | "
            f"{_pm(r['rendered_128']['l1'])} / {_pm(r['rendered_128']['ssim'], 3)} / "
            f"{r['rendered_128']['iou']['mean']:.3f} | {edges}; {raw_edges} | "
            f"{r['rendered_edges_64']['grey_fraction']['mean']:.2f}; "
            f"{r['raw_edges_64']['grey_fraction']['mean']:.2f} | {_pm(kid['raw'], 2)} | "
            f"{_pm(kid['rendered'], 2)} | {_pm(kid['content_copy'], 2)} | {_pm(kid['floor'], 2)} |"
        )
    ks = [k for k in ("k1", "k4", "k8", "k16") if k in head]
    out += [
        "",
        "rendered L1 at 64 px and rendered HOG-KID by k (held-out fonts x unseen characters):",
        "",
        "| font | "
        + " | ".join(f"L1 {k}" for k in ks)
        + " | "
        + " | ".join(f"HOG-KID {k}" for k in ks)
        + " |",
        "|---|" + "---|" * (2 * len(ks)),
    ]
    for name in ["mean over fonts", *head["k4"]["per_font"]]:
        by_k = {
            k: head[k]["mean_over_fonts"]
            if name == "mean over fonts"
            else head[k]["per_font"][name]
            for k in ks
        }
        l1s = " | ".join(_pm(by_k[k]["rendered_64"]["l1"]) for k in ks)
        kids = " | ".join(_pm(by_k[k]["hog_kid"]["rendered"], 2) for k in ks)
        out.append(f"| {name} | {l1s} | {kids} |")
    seen = layer.get("seen_fonts_unseen_chars", {}).get("k4")
    if seen:
        m = seen["mean_over_fonts"]
        out += [
            "",
            f"seen fonts ({len(seen['per_font'])}, one a group) x unseen characters, k = 4, "
            f"64 px, mean over fonts: raw L1 {_pm(m['raw_64']['l1'])}, "
            f"rendered L1 {_pm(m['rendered_64']['l1'])}"
            f", rendered SSIM 64 {_pm(m['rendered_64']['ssim'], 3)}, edge width / truth's 64 "
            f"{m['rendered_edges_64']['edge_width']['mean']:.2f} (raw "
            f"{m['raw_edges_64']['edge_width']['mean']:.2f})"
            + f"; HOG-KID raw {_pm(m['hog_kid']['raw'], 2)}, rendered "
            f"{_pm(m['hog_kid']['rendered'], 2)}, content copy "
            f"{_pm(m['hog_kid']['content_copy'], 2)}, floor {_pm(m['hog_kid']['floor'], 2)}",
        ]
    out += ["", "targets:", ""]
    for name, t in layer["targets"].items():
        count = t.get("draws_met", t.get("fonts_met"))
        out.append(f"- {name}: {'met' if t['met'] else 'NOT met'} ({count}); {t['value']}")
    return out


def _write(path: Path, card: dict[str, Any]) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
