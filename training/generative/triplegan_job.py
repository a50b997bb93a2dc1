"""The Triple-GAN job (`make train-triplegan`): trains triplegan.py's game on 100 labels for
each seed with the three classifier baselines beside it, ships seed 0's classifier as a
`predictive` model (triplegan-digits-classifier: x [N, 64] levels 0..16 -> logits [1, N, 10])
and its generator as a conditional `sampler` (triplegan-digits: z [N, 32] + label [N] int64 ->
y [N, 8, 8] in [0, 1], level = floor(17 y)), and measures the generator with quality.py's
in-house classifier beside the shipped cvae-digits and dcgan-digits graphs."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from training.export import write_card
from training.generative import cvae, data, dcgan, evaluate, gan, quality, report
from training.generative import triplegan as tg

NAME = "triplegan-digits"
CLASSIFIER_NAME = "triplegan-digits-classifier"
COMMAND = "make train-triplegan"
PER_CLASS_LABELS = 10
LABEL_SEED = 100  # the labelled rows of seed s: np.random.default_rng(LABEL_SEED + s)
SAMPLES_PER_LABEL = 150  # generated digits per label for the card (1,500, as many as train)
SHIPPED = dcgan.SHIPPED
CLASSES = [str(i) for i in range(tg.NUM_LABELS)]
METHODS = {
    "labels_only": "the same classifier, recipe and step count on the 100 labelled digits alone",
    "labels_entropy": "the same on the 100 labels plus Triple-GAN's unlabelled entropy terms "
    "(entropy of p_c(y|x_u), batch-mean balance) on the other 1,400, no GAN: what the "
    "game adds beyond them",
    "triple_gan": "Triple-GAN's classifier (the shipped one is seed 0's)",
    "all_labels": "the same classifier, recipe and step count on all 1,500 labelled digits "
    "(the ceiling)",
}


class ClassifierGraph(nn.Module):
    """x [N, 64] pixel levels 0..16 -> logits [1, N, 10] (S = 1 draw: one network, no
    snapshots), each level read at its midpoint (level + 0.5) / 17 as in training's scale."""

    def __init__(self, classifier: tg.Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = ((x + 0.5) / data.LEVELS).reshape(-1, 1, data.SIDE, data.SIDE)
        return self.classifier(y).unsqueeze(0)


class SampleGraph(nn.Module):
    """z [N, 32] float32, label [N] int64 -> y [N, 8, 8] in [0, 1]. No noise inside; batch
    norm on fixed statistics, so a row depends on its own (z, label) alone."""

    def __init__(self, generator: gan.Generator) -> None:
        super().__init__()
        self.generator = generator
        self.register_buffer("eye", torch.eye(generator.num_labels))

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        return self.generator.images(z, self.eye[label]).reshape(-1, data.SIDE, data.SIDE)


@dataclass(frozen=True)
class Settings:
    recipe: tg.Recipe = field(default_factory=tg.Recipe)
    seeds: int = 3
    classifier_epochs: int = 60  # quality.py's in-house classifier
    samples_per_label: int = SAMPLES_PER_LABEL

    @staticmethod
    def smoke() -> Settings:
        return Settings(tg.Recipe.smoke(), seeds=1, classifier_epochs=2, samples_per_label=6)


@dataclass
class SeedRun:
    seed: int
    split: tg.Split
    players: tg.Players
    fit: tg.Fit
    scores: dict[str, dict[str, float]]  # method -> test metrics
    conditional_accuracy: float
    baseline_losses: dict[str, list[float]]


def generated(graph: Path, per_label: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`per_label` samples per label from the exported graph, z ~ N(0, I) (numpy seed):
    (y [N, 64] in [0, 1], labels [N])."""
    labels = np.repeat(np.arange(tg.NUM_LABELS, dtype=np.int64), per_label)
    z = np.random.default_rng(seed).standard_normal((len(labels), tg.Z_DIM)).astype(np.float32)
    y = report.run_onnx(graph, {"z": z, "label": labels}, "x")
    return y.reshape(len(labels), -1), labels


def generator_accuracy(
    generator: gan.Generator, classifier: evaluate.Classifier, per_label: int, seed: int
) -> float:
    """The in-house classifier's accuracy on binarised samples of each label (PyTorch)."""
    labels = torch.arange(tg.NUM_LABELS).repeat_interleave(per_label)
    z = torch.randn(len(labels), tg.Z_DIM, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        y = generator.images(z, torch.eye(tg.NUM_LABELS)[labels]).numpy()
    binary = data.binarise(quality.levels_of_unit(y))
    return evaluate.conditional_accuracy(classifier, binary, labels.numpy())[0]


def run_seed(digits: data.Digits, ref: quality.Reference, settings: Settings, seed: int) -> SeedRun:
    """The game and the three baselines on seed's labelled rows, scored on the test split."""
    recipe = settings.recipe
    split = tg.labelled_split(digits, PER_CLASS_LABELS, LABEL_SEED + seed)
    test = (digits.x_test, digits.y_test)
    players, fit = tg.train(split, recipe, seed, test, desc=f"triple-gan seed {seed}")
    scores = {
        "triple_gan": tg.classification_metrics(
            tg.probabilities(players.classifier, test[0]), test[1]
        )
    }
    losses: dict[str, list[float]] = {}
    baselines = {
        "labels_only": (split.x_labelled, split.y_labelled, None),
        "labels_entropy": (split.x_labelled, split.y_labelled, split.x_unlabelled),
        "all_labels": (digits.x_train, digits.y_train, None),
    }
    for method, (x, y, unlabelled) in baselines.items():
        c, losses[method] = tg.train_supervised(
            x, y, recipe, fit.steps, seed, unlabelled, desc=f"{method} seed {seed}"
        )
        scores[method] = tg.classification_metrics(tg.probabilities(c, test[0]), test[1])
    accuracy = generator_accuracy(players.average, ref.classifier, settings.samples_per_label, 3)
    return SeedRun(seed, split, players, fit, scores, accuracy, losses)


def comparison(runs: list[SeedRun]) -> dict[str, Any]:
    """Each method's test metrics over the seeds (mean, sd, per seed), and Triple-GAN against
    the labels-only and entropy-only baselines seed by seed (paired differences)."""
    table = {m: tg.summarise([r.scores[m] for r in runs]) for m in METHODS}
    verdict: dict[str, Any] = {}
    for base in ("labels_only", "labels_entropy"):
        verdict[f"triple_gan_vs_{base}"] = paired(
            [r.scores["triple_gan"] for r in runs], [r.scores[base] for r in runs]
        )
    versus = verdict["triple_gan_vs_labels_only"]
    verdict["beats_labels_only_on_mean_error"] = versus["mean_error_difference"] < 0
    verdict["beats_labels_only_beyond_noise"] = versus["beyond_noise"]
    verdict["rule"] = NOISE_RULE
    return {"methods": METHODS, "test": table, "verdict": verdict}


NOISE_RULE = (
    "beyond noise: the mean of the per-seed (paired) error differences is more than twice its "
    "standard error (sd of the differences / sqrt(seeds)); with 3 seeds a rough screen, not a test"
)


def paired(mine: list[dict[str, float]], base: list[dict[str, float]]) -> dict[str, Any]:
    """Per-seed differences mine - base of error and NLL: wins, mean, its standard error."""
    err = np.array([m["error"] - b["error"] for m, b in zip(mine, base, strict=True)])
    nll = np.array([m["nll"] - b["nll"] for m, b in zip(mine, base, strict=True)])
    se = float(err.std(ddof=1) / np.sqrt(len(err))) if len(err) > 1 else None
    return {
        "lower_error_in_seeds": f"{int((err < 0).sum())} of {len(err)}",
        "error_differences": [round(float(v), 4) for v in err],
        "mean_error_difference": round(float(err.mean()), 4),
        "mean_error_difference_se": None if se is None else round(se, 4),
        "beyond_noise": se is not None and bool(abs(err.mean()) > 2 * se),
        "mean_nll_difference": round(float(nll.mean()), 4),
    }


def export_classifier(
    run: SeedRun, directory: Path, digits: data.Digits
) -> tuple[nn.Module, dict[str, float]]:
    graph = ClassifierGraph(run.players.classifier).eval()
    report.export(
        graph, (torch.from_numpy(digits.x_test[:4]),), directory / "model.onnx", ["x"], ["logits"]
    )
    logits = report.run_onnx(directory / "model.onnx", {"x": digits.x_test}, "logits")
    probs = torch.softmax(torch.from_numpy(logits[0]), -1).numpy().astype(np.float64)
    return graph, tg.classification_metrics(probs, digits.y_test)


def export_sampler(run: SeedRun, directory: Path) -> nn.Module:
    graph = SampleGraph(run.players.average).eval()
    example = (torch.randn(4, tg.Z_DIM), torch.arange(4) % tg.NUM_LABELS)
    report.export(graph, example, directory / "sample.onnx", ["z", "label"], ["x"])
    return graph


def sampler_metrics(graph: Path, ref: quality.Reference, per_label: int) -> dict[str, Any]:
    """Conditional accuracy (in-house classifier on binarised samples of each label) and the
    DCGAN card's quality measures, for this graph, the shipped cvae-digits (Bernoulli draws of
    its means, seed 2, as its own card) and the shipped dcgan-digits (unconditional)."""
    y, labels = generated(graph, per_label, seed=1)
    levels = quality.levels_of_unit(y)
    binary = data.binarise(levels)
    accuracy, per_class = evaluate.conditional_accuracy(ref.classifier, binary, labels)
    out: dict[str, Any] = {
        "conditional_accuracy": report.rounded(accuracy),
        "conditional_accuracy_per_class": [report.rounded(a, 3) for a in per_class],
        **quality.measures(binary, ref, 2, levels),
    }
    compared: dict[str, Any] = {"real_test": quality.real_test(ref)}
    cvae_graph = SHIPPED / cvae.NAME / report.MODEL_VERSION / "sample.onnx"
    if cvae_graph.exists():
        means, cvae_labels = cvae.generated(cvae_graph, per_label, seed=1)
        flat = means.reshape(len(means), -1)
        draws = (np.random.default_rng(2).random(flat.shape) < flat).astype(np.float32)
        acc, per = evaluate.conditional_accuracy(ref.classifier, draws, cvae_labels)
        compared[cvae.NAME] = {
            "conditional_accuracy": report.rounded(acc),
            "conditional_accuracy_per_class": [report.rounded(a, 3) for a in per],
            **quality.measures(draws, ref, 2),
        }
    dcgan_graph = SHIPPED / dcgan.NAME / report.MODEL_VERSION / "sample.onnx"
    if dcgan_graph.exists():
        rows = per_label * tg.NUM_LABELS
        dc_levels = quality.levels_of_unit(quality.sample_graph(dcgan_graph, rows, dcgan.Z_DIM, 1))
        compared[dcgan.NAME] = quality.measures(data.binarise(dc_levels), ref, 2, dc_levels)
    out["compared"] = compared
    return out


def run(
    out: Path, docs: Path | None, smoke: bool = False, seeds: int | None = None
) -> list[report.Result]:
    """Train every seed, export seed 0's classifier and generator, measure, write both cards."""
    settings = Settings.smoke() if smoke else Settings()
    count = settings.seeds if seeds is None else seeds
    start = time.perf_counter()
    digits = data.load_split()
    ref = quality.reference(digits, settings.classifier_epochs)
    runs = [run_seed(digits, ref, settings, seed) for seed in range(count)]
    shipped = runs[0]
    table = comparison(runs)
    shared = {
        "labelled": {
            "per_class": PER_CLASS_LABELS,
            "labelled_rows": len(shipped.split.y_labelled),
            "unlabelled_rows": len(shipped.split.x_unlabelled),
            "choice": f"seed s: np.random.default_rng({LABEL_SEED} + s).choice of "
            f"{PER_CLASS_LABELS} training rows per class; the shipped models are seed 0's",
            "shipped_labelled_rows": shipped.split.labelled_index.tolist(),
        },
        "recipe": settings.recipe.card(),
        "seeds": count,
        "comparison": table,
        "generator_conditional_accuracy_per_seed": [
            report.rounded(r.conditional_accuracy) for r in runs
        ],
        "training": {
            **shipped.fit.card(),
            "seconds_all_seeds": round(time.perf_counter() - start, 1),
        },
        "selection": SELECTION,
    }
    c_dir = report.model_dir(out, CLASSIFIER_NAME)
    c_graph, onnx_scores = export_classifier(shipped, c_dir, digits)
    write_classifier_card(c_dir, {"this_model": onnx_scores, **shared})
    g_dir = report.model_dir(out, NAME)
    g_graph = export_sampler(shipped, g_dir)
    metrics = {
        **sampler_metrics(g_dir / "sample.onnx", ref, settings.samples_per_label),
        "samples_per_label": settings.samples_per_label,
        "classifier_test_accuracy": report.rounded(
            float((ref.classifier.predict(ref.test_binary) == digits.y_test).mean())
        ),
        "in_house": IN_HOUSE,
        **shared,
    }
    y, _ = generated(g_dir / "sample.onnx", settings.samples_per_label, 1)
    metrics["labelled_nearness"] = {
        NAME: labelled_nearness(quality.levels_of_unit(y), shipped.split),
        "real_test": labelled_nearness(digits.x_test, shipped.split),
        "what": NEARNESS_NOTE,
    }
    write_sampler_card(g_dir, metrics)
    if docs is not None:
        draw_docs(docs, g_dir, runs, table)
    seconds = time.perf_counter() - start
    return [
        report.Result(
            CLASSIFIER_NAME,
            c_dir,
            {"this_model": onnx_scores, **shared},
            {"predict": c_graph},
            seconds,
        ),
        report.Result(NAME, g_dir, metrics, {"sample": g_graph}, seconds),
    ]


NEARNESS_NOTE = (
    "the share of samples (150 per label, seed 1) nearer one of seed 0's 100 labelled digits "
    "than any of its 1,400 unlabelled ones (Euclidean, levels), beside the real test digits' "
    "share: D's only real pairs are the labelled digits, and a G pulled toward them shows here"
)

SELECTION = (
    "no checkpoint or hyperparameter is chosen on labels outside the 100: every run keeps its "
    "final weights (the classifier after the last step, the generator's weight average); the "
    "loss weights are the authors' released code's (alpha 1/2, adversarial 0.01, R_P from a "
    "third of training, entropy 0.3, balance 1e-3), the network sizes were set by CPU time, "
    "and the test accuracy by epoch on the loss plot is drawn, never read by the training"
)

IN_HOUSE = (
    "conditional accuracy, Fréchet distance, confidence and diversity are in-house numbers: "
    "quality.py's MLP classifier (64-128-64-10, trained on the 1,500 real binarised training "
    "digits with all their labels; features = its 64-d penultimate layer), not Inception/FID, "
    "comparable only with each other. 150 samples per label from z ~ N(0, I) (numpy seed 1) "
    "through each shipped graph, binarised as the real digits (level > 7, y read back as level "
    "= floor(17 y); the CVAE's means drawn as Bernoulli with seed 2); the DCGAN is "
    "unconditional, 1,500 samples from the same seed. Fréchet distance to the 297 real test "
    "digits beside the real train-vs-test floor."
)


def architecture(recipe: tg.Recipe) -> str:
    w, g = recipe.classifier_width, recipe.gan_width
    return (
        f"classifier: Gaussian input noise 0.15 (training), conv 3x3 {w} -> conv 3x3 {w} -> "
        f"maxpool -> dropout 0.5 -> conv 3x3 {2 * w} -> conv 3x3 {2 * w} -> maxpool -> dropout "
        f"0.5 -> linear 10, leaky ReLU 0.1; generator: gan.Generator (z {tg.Z_DIM} + one-hot "
        f"label -> linear {4 * g}x2x2 -> convT -> convT -> conv, batch norm, sigmoid); "
        f"discriminator: gan.Discriminator width {g} with the one-hot label as 10 constant "
        "input channels, spectral norm on every layer"
    )


def write_classifier_card(directory: Path, metrics: dict[str, Any]) -> None:
    recipe = tg.Recipe(**metrics["recipe"])
    write_card(
        directory,
        name=CLASSIFIER_NAME,
        kind="predictive",
        fmt="onnx",
        graphs={"predict": ("model.onnx", ["x"], ["logits"])},
        signature={
            "task": "classification",
            "input_dim": data.DIM,
            "features": [f"pixel_{i}" for i in range(data.DIM)],
            "classes": CLASSES,
            "input_range": [0, data.LEVELS - 1],
            "draws": 1,
            "method": "triple-gan",
        },
        description=(
            "Digit (0-9) from 8x8 pixel levels 0..16: the classifier of a Triple-GAN (Li et "
            "al. 2017) trained with 10 labels per class (100 of the 1,500 training digits; the "
            "other 1,400 unlabelled). One network, so logits are [S=1, N, 10] and the mutual "
            "information is 0; the entropy of the prediction is its only uncertainty. "
            + architecture(recipe)
            + ". The card compares it on the 297 test digits with the same network trained on "
            "the 100 labels alone, with the entropy terms, and on all 1,500 labels."
        ),
        seed=0,
        data=data.describe(PREPROCESSING),
        metrics=metrics,
        command=COMMAND,
    )


def write_sampler_card(directory: Path, metrics: dict[str, Any]) -> None:
    recipe = tg.Recipe(**metrics["recipe"])
    write_card(
        directory,
        name=NAME,
        kind="sampler",
        fmt="onnx",
        graphs={"sample": ("sample.onnx", ["z", "label"], ["x"])},
        signature={
            "z_dim": tg.Z_DIM,
            "num_labels": tg.NUM_LABELS,
            **report.SIGNATURE_BASE,
            "latent": "standard_normal",
        },
        description=(
            "The label-conditional generator of a Triple-GAN (Li et al. 2017) trained with 10 "
            "labels per class on the 17-level digits (dequantised like the DCGAN's): the sample "
            f"graph maps z ~ N(0, I) [N, {tg.Z_DIM}] and label [N] (int64, 0-9) to y [N, 8, 8] "
            "in [0, 1] (level = floor(17 y)); no noise inside, batch norm on fixed statistics. "
            "The shipped generator is an exponential moving average of G's weights. "
            + architecture(recipe)
            + ". "
            + IN_HOUSE
        ),
        seed=0,
        data=data.describe(PREPROCESSING),
        metrics=metrics,
        command=COMMAND,
    )


PREPROCESSING = (
    "10 labelled training digits per class (np.random.default_rng(100 + seed)), the other "
    "1,400 training digits unlabelled (their labels unused); images on the DCGAN's scale, "
    "uniformly dequantised y = (level + u) / 17 fresh every epoch; the served classifier reads "
    "levels 0..16 at their midpoints (level + 0.5) / 17"
)


def draw_docs(docs: Path, directory: Path, runs: list[SeedRun], table: dict[str, Any]) -> None:
    labels = np.repeat(np.arange(tg.NUM_LABELS, dtype=np.int64), 10)
    z = np.random.default_rng(0).standard_normal((len(labels), tg.Z_DIM)).astype(np.float32)
    y = report.run_onnx(directory / "sample.onnx", {"z": z, "label": labels}, "x")
    report.save_grid(y, docs / f"{NAME}-samples.png", 10, f"{NAME}: row = label, seed 0")
    save_loss_plot(runs[0], table, docs / f"{NAME}-loss.png")


def save_loss_plot(run: SeedRun, table: dict[str, Any], path: Path) -> None:
    """Seed 0's game: the three players' losses per step (one-epoch running means), D's mean
    output on each kind of pair, and C's test accuracy by epoch beside the baselines' final
    accuracies (mean over seeds)."""
    fit = run.fit
    path.parent.mkdir(parents=True, exist_ok=True)
    per_epoch = max(1, fit.steps // max(1, len(fit.test_accuracy) and fit.test_accuracy[-1][0]))
    epochs = (np.arange(fit.steps) + 1) / per_epoch
    fig, (top, middle, bottom) = plt.subplots(3, 1, figsize=(7, 8.5), sharex=True)
    for label, values, colour in (
        ("D loss", fit.d_loss, "tab:blue"),
        ("G loss", fit.g_loss, "tab:orange"),
        ("C: R_L on labelled pairs", fit.c_loss, "tab:green"),
        ("C: R_P on G's pairs", fit.r_p, "tab:purple"),
        ("labels-only baseline: R_L", run.baseline_losses["labels_only"], "tab:grey"),
    ):
        top.plot(
            epochs[: len(values)], gan.moving_mean(values, per_epoch), color=colour, label=label
        )
    top.set_yscale("log")
    top.set_ylabel("loss (nats)")
    for label, values, colour in (
        ("D(x, y) labelled", fit.d_real, "tab:green"),
        ("D(x, y_c) unlabelled, y_c ~ C", fit.d_fake_c, "tab:blue"),
        ("D(G(z, y), y)", fit.d_fake_g, "tab:red"),
    ):
        middle.plot(epochs, gan.moving_mean(values, per_epoch), color=colour, label=label)
    middle.set_ylim(0.0, 1.0)
    middle.set_ylabel("mean D output")
    marks, accs = zip(*fit.test_accuracy, strict=True) if fit.test_accuracy else ((), ())
    bottom.plot(marks, accs, marker=".", color="tab:purple", label="Triple-GAN C (seed 0)")
    for method, colour in (
        ("labels_only", "tab:grey"),
        ("labels_entropy", "tab:olive"),
        ("all_labels", "black"),
    ):
        mean = table["test"][method]["accuracy"]["mean"]
        bottom.axhline(mean, color=colour, linestyle="--", label=f"{method} (final, mean of seeds)")
    bottom.set_ylabel("test accuracy")
    bottom.set_xlabel("epoch (passes over the 1,400 unlabelled digits)")
    for ax in (top, middle, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    top.set_title(f"{NAME}: seed 0 (test accuracy drawn, never used for selection)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(results: list[report.Result]) -> list[str]:
    """The card's headline numbers as printed lines."""
    lines = []
    table = results[0].metrics["comparison"]
    seeds = table["test"]["triple_gan"]["seeds"]
    lines.append(f"test split, {seeds} seed(s): mean (sd) of error / NLL / ECE")
    for method in METHODS:
        row = table["test"][method]
        cells = " / ".join(
            f"{row[k]['mean']:.4f} ({row[k]['sd']:.4f})" for k in ("error", "nll", "ece")
        )
        lines.append(f"  {method:<16} {cells}   errors per seed {row['error']['runs']}")
    lines.append(f"  verdict {table['verdict']}")
    lines.append(f"shipped classifier (seed 0, via ONNX): {results[0].metrics['this_model']}")
    m = results[1].metrics
    lines.append(
        f"generator conditional accuracy {m['conditional_accuracy']} (per seed "
        f"{m['generator_conditional_accuracy_per_seed']}), Fréchet {m['frechet_distance']} "
        f"(floor {m['frechet_distance_floor_train_vs_test']}), confidence {m['confidence_mean']}, "
        f"class entropy {m['class_entropy_nats']}, classifier score {m['classifier_score']}"
    )
    lines.append(
        f"  labelled nearness {m['labelled_nearness'][NAME]} (real test digits "
        f"{m['labelled_nearness']['real_test']})"
    )
    for name, other in m["compared"].items():
        keys = ("conditional_accuracy", "frechet_distance", "confidence_mean", "classifier_score")
        lines.append(f"  {name}: " + ", ".join(f"{k} {other[k]}" for k in keys if k in other))
    lines.append(f"wall time {results[0].seconds:.0f} s")
    return lines


def main(argv: list[str] | None = None) -> list[report.Result]:
    parser = argparse.ArgumentParser(
        prog="python -m training.generative.triplegan_job", description=__doc__
    )
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--docs", type=Path, default=Path("docs/models"))
    parser.add_argument("--smoke", action="store_true", help="a few seconds (tests)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds to train (default 3)")
    args = parser.parse_args(argv)
    results = run(args.out, args.docs, smoke=args.smoke, seeds=args.seeds)
    for line in summary(results):
        print(line, flush=True)
    return results


def labelled_nearness(rows: np.ndarray, split: tg.Split) -> dict[str, float]:
    """Whether rows of levels [N, 64] crowd around the labelled digits: the share nearer a
    labelled row than any unlabelled one (Euclidean, levels), and the median distances to the
    nearest of each. Real test digits give the reference (a few percent)."""
    to_labelled = quality.nearest_distances(rows, split.x_labelled)
    to_unlabelled = quality.nearest_distances(rows, split.x_unlabelled)
    return {
        "share_nearer_a_labelled_row": report.rounded(float((to_labelled < to_unlabelled).mean())),
        "median_to_labelled": report.rounded(float(np.median(to_labelled))),
        "median_to_unlabelled": report.rounded(float(np.median(to_unlabelled))),
    }


def shipped_nearness(models: Path = SHIPPED) -> dict[str, dict[str, float]]:
    """labelled_nearness of the shipped generator's card samples (150 per label, seed 1) and of
    the real test digits, against seed 0's labelled rows (the shipped model's)."""
    digits = data.load_split()
    split = tg.labelled_split(digits, PER_CLASS_LABELS, LABEL_SEED)
    y, _ = generated(models / NAME / report.MODEL_VERSION / "sample.onnx", SAMPLES_PER_LABEL, 1)
    return {
        NAME: labelled_nearness(quality.levels_of_unit(y), split),
        "real_test": labelled_nearness(digits.x_test, split),
    }


if __name__ == "__main__":
    main()
