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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.evaluate.card")
    p.add_argument("directory", type=Path, nargs="?", default=Path("models/glyph-style/1"))
    p.add_argument("--docs", type=Path, default=Path("docs/models"))
    p.add_argument("--draws", type=int, default=rendered.DRAWS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--skip-grid", action="store_true", help="only the rendered section (not the k=16 column)"
    )
    p.add_argument(
        "--summary",
        action="store_true",
        help="print the card's rendered section as tables (what docs/models/glyph-style.md "
        "shows) and exit: nothing is computed",
    )
    args = p.parse_args(argv)
    if args.summary:
        card = json.loads((args.directory / "card.json").read_text())
        print("\n".join(summary(card["metrics"])))
        return 0
    if args.draws < 1:
        p.error("--draws: at least 1")
    started = time.time()
    path = args.directory / "card.json"
    card = json.loads(path.read_text())
    em_ratio = float(card["signature"]["em_ratio"])
    bank = banklib.shipped(args.threads, em_ratio)
    print(f"bank: {len(bank.fonts)} fonts, {time.time() - started:.0f}s", flush=True)
    generate = OnnxStyle(args.directory, bank, args.threads)
    metrics = card["metrics"]
    # the rendered layer first, then the grid's k = 16 column cell by cell (the seen fonts'
    # 24,000 glyphs last), the card written after each: a long run keeps what it has
    t0 = time.time()
    metrics["rendered"] = section = rendered.judge(
        bank, generate, draws=args.draws, em_ratio=em_ratio, log=lambda r: print(r, flush=True)
    )
    section["seconds"] = round(time.time() - t0)
    _write(path, card)
    if not args.skip_grid:
        t0 = time.time()
        for cell in CELLS:
            column, _ = evaluate(
                bank,
                generate,
                classify=None,
                ks=(NEW_K,),
                n_seen_chars=200,
                seed=card["seed"],
                judged_ks=(),
                cells=(cell,),
                log=lambda r: print(r, flush=True),
            )
            metrics["grid"][cell][f"k{NEW_K}"] = column[cell][f"k{NEW_K}"]
            metrics["evaluation_k16_seconds"] = round(time.time() - t0)
            _write(path, card)
    _, sheets = evaluate(
        bank,
        generate,
        classify=None,
        ks=(4,),
        n_seen_chars=200,
        seed=card["seed"],
        judged_ks=(),
        cells=("unseen_fonts_unseen_chars",),
        log=lambda r: None,
    )
    for font, s in sheets.items():
        sheet(sheet_title(font), s, args.docs / f"{card['name']}-{font}.png")
    print(json.dumps(section["targets"], indent=1), flush=True)
    print(f"wrote {path} ({time.time() - started:.0f}s)", flush=True)
    return 0


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
        " / IoU 128 | edge width / truth's 64, 128, 256 (rendered; raw) | grey fraction / "
        "truth's 64 (rendered; raw) | HOG-KID raw | rendered | content copy | floor |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = {"mean over fonts": head["k4"]["mean_over_fonts"], **head["k4"]["per_font"]}
    for name, r in rows.items():
        edges = ", ".join(f"{r[f'rendered_edges_{s}']['edge_width']['mean']:.2f}" for s in SIZES)
        raw_edges = ", ".join(f"{r[f'raw_edges_{s}']['edge_width']['mean']:.2f}" for s in SIZES)
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
            f"seen fonts ({len(seen['per_font'])}, one a group) x unseen characters, k = 4, mean "
            f"over fonts: raw L1 {_pm(m['raw_64']['l1'])}, "
            f"rendered L1 {_pm(m['rendered_64']['l1'])}"
            f", rendered SSIM 128 {_pm(m['rendered_128']['ssim'], 3)}, edge width / truth's "
            + ", ".join(f"{m[f'rendered_edges_{s}']['edge_width']['mean']:.2f}" for s in SIZES)
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
