"""DCGAN on the 17-level digits (gan.py's players), on the flow's pixel scale: real images
are uniformly dequantised, y = (level + u) / 17 in [0, 1), fresh every epoch, so the game is
between two continuous distributions and a sample reads back as level = floor(17 y). Ships the
generator as a sampler graph: z [N, 32] -> y [N, 8, 8] in [0, 1] (no noise inside).

A GAN has no likelihood to pick its epoch with: every few epochs the generator is scored by
the Fréchet distance (in the in-house classifier's features) between its samples and the 200
held-out validation digits, and the best checkpoint is kept. The card then measures the
shipped graph the same way as the VAE's and the flow's shipped graphs (quality.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.generative import data, evaluate, gan, quality, report

NAME = "dcgan-digits"
COMMAND = "make train-dcgan"
Z_DIM = 32
SAMPLES = 1500  # generated digits for the card's measures: as many as the training split
MEASURE_SEED = 1  # z of the measured samples (the VAE's Bernoulli draws use seed 2)
SHIPPED = Path(__file__).resolve().parents[2] / "models"  # the VAE and flow compared with


class SampleGraph(nn.Module):
    """The exported sampler: z [N, 32] -> y [N, 8, 8] in [0, 1]. Batch norm reads its fixed
    (recalibrated) statistics, so each row depends on its own noise alone."""

    def __init__(self, generator: gan.Generator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator.images(z).reshape(-1, data.SIDE, data.SIDE)


@dataclass(frozen=True)
class Settings:
    """Full-run settings; `smoke()` shrinks them to seconds for tests."""

    schedule: gan.GanSchedule = field(default_factory=lambda: gan.GanSchedule(epochs=500))
    width: int = 64
    dropout: float = 0.0
    score_samples: int = 1000  # generated digits per checkpoint score
    classifier_epochs: int = 60
    samples: int = SAMPLES

    @staticmethod
    def smoke() -> Settings:
        return Settings(
            schedule=gan.GanSchedule(epochs=2, eval_every=1),
            width=8,
            score_samples=50,
            classifier_epochs=2,
            samples=60,
        )


def levels_of(generator: gan.Generator, rows: int, seed: int) -> np.ndarray:
    """`rows` samples of `generator` (eval mode) read back as levels [rows, 64]."""
    z = torch.randn(rows, generator.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return quality.levels_of_unit(generator.images(z).numpy())


def validation_score(
    classifier: evaluate.Classifier, x_valid: np.ndarray, rows: int
) -> Callable[[gan.Generator], float]:
    """The checkpoint score: Fréchet distance of `rows` binarised samples (fixed noise) to
    the binarised validation digits, in the classifier's features."""
    target = classifier.features(data.binarise(x_valid))

    def score(generator: gan.Generator) -> float:
        binary = data.binarise(levels_of(generator, rows, seed=7))
        return evaluate.frechet_distance(classifier.features(binary), target)

    return score


def train(
    x_fit: np.ndarray, x_valid: np.ndarray, classifier: evaluate.Classifier, settings: Settings
) -> tuple[gan.Generator, gan.GanFit]:
    """The game on freshly dequantised fit rows each epoch (gan.train draws them per batch from
    one epoch's copy), the best checkpoint by validation_score, batch norm recalibrated."""
    schedule = settings.schedule
    torch.manual_seed(schedule.seed)
    players = gan.Players(
        gan.Generator(Z_DIM, settings.width),
        gan.Discriminator(settings.width, dropout=settings.dropout),
    )
    real = dequantised_epochs(x_fit, schedule.epochs, schedule.seed + 10)
    score = validation_score(classifier, x_valid, settings.score_samples)
    result = gan.train(players, real, schedule, score, desc="dcgan")
    generator = players.kept()
    gan.recalibrate(generator, seed=schedule.seed + 20)
    return generator, result


def dequantised_epochs(levels: np.ndarray, epochs: int, seed: int) -> gan.RealBatches:
    """A fresh uniform dequantisation of the rows for each epoch, as images [N, 1, 8, 8]."""
    rng = np.random.default_rng(seed)

    def epoch_rows(_: int) -> torch.Tensor:
        return torch.from_numpy(data.dequantise(levels, rng)).reshape(-1, 1, data.SIDE, data.SIDE)

    return gan.RealBatches(len(levels), epoch_rows)


def shipped_samples(models: Path, rows: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """The VAE's and the flow's shipped graphs sampled like the GAN's: (binary, levels) rows.
    The VAE's samples are Bernoulli draws from its means (seed 2, as cvae-digits is scored);
    the flow's y reads back as levels like the GAN's."""
    found: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    vae_graph = models / "vae-digits" / report.MODEL_VERSION / "sample.onnx"
    if vae_graph.exists():
        means = quality.sample_graph(vae_graph, rows, 8, MEASURE_SEED)
        draws = (np.random.default_rng(2).random(means.shape) < means).astype(np.float32)
        found["vae-digits"] = (draws, None)
    flow_graph = models / "flow-digits" / report.MODEL_VERSION / "sample.onnx"
    if flow_graph.exists():
        levels = quality.levels_of_unit(quality.sample_graph(flow_graph, rows, data.DIM, 1))
        found["flow-digits"] = (data.binarise(levels), levels)
    return found


def comparison(ref: quality.Reference, models: Path, rows: int) -> dict[str, Any]:
    """The same measures for the shipped VAE and flow (the repository's models/, whatever
    --out is), and the classifier's confidence and diversity on the real test digits."""
    out: dict[str, Any] = {"real_test": quality.real_test(ref)}
    for name, (binary, levels) in shipped_samples(models, rows).items():
        card = models / name / report.MODEL_VERSION / "card.json"
        sha = json.loads(card.read_text())["graphs"]["sample"]["sha256"]
        out[name] = {"sample_sha256": sha, **quality.measures(binary, ref, 2, levels)}
    return out


def run(out: Path, docs: Path | None, smoke: bool = False) -> report.Result:
    """Train the DCGAN, export out/dcgan-digits/1/sample.onnx, measure it beside the shipped
    VAE and flow, write the card and the docs PNGs."""
    settings = Settings.smoke() if smoke else Settings()
    digits = data.load_split()
    ref = quality.reference(digits, settings.classifier_epochs)
    x_fit, x_valid = data.train_valid(digits.x_train)
    generator, result = train(x_fit, x_valid, ref.classifier, settings)
    directory = report.model_dir(out, NAME)
    graph = SampleGraph(generator).eval()
    report.export(graph, (torch.randn(4, Z_DIM),), directory / "sample.onnx", ["z"], ["x"])
    y = quality.sample_graph(directory / "sample.onnx", settings.samples, Z_DIM, MEASURE_SEED)
    levels = quality.levels_of_unit(y)
    metrics = {
        **quality.measures(data.binarise(levels), ref, 2, levels),
        "compared": comparison(ref, SHIPPED, settings.samples),
        "classifier_test_accuracy": report.rounded(
            float((ref.classifier.predict(ref.test_binary) == digits.y_test).mean())
        ),
        "training": {**result.card(), "score": SCORE_NOTE},
        "schedule": settings.schedule.card(),
        "architecture": architecture(settings),
        "in_house": IN_HOUSE,
    }
    metrics["verdict"] = verdict(metrics)
    write_dcgan_card(directory, metrics)
    if docs is not None:
        draw_docs(docs, directory, result, settings)
    return report.Result(NAME, directory, metrics, {"sample": graph})


def architecture(settings: Settings) -> dict[str, Any]:
    w = settings.width
    return {
        "z_dim": Z_DIM,
        "generator": (
            f"z {Z_DIM} -> linear {4 * w}x2x2 + BN + ReLU -> convT 4x4/2 {2 * w}x4x4 + BN + ReLU "
            f"-> convT 4x4/2 {w}x8x8 + BN + ReLU -> conv 3x3 1x8x8 -> sigmoid"
        ),
        "discriminator": (
            f"conv 3x3 {w}x8x8 -> conv 4x4/2 {2 * w}x4x4 -> conv 4x4/2 {4 * w}x2x2 -> linear 1, "
            f"leaky ReLU 0.2, spectral norm on every layer, dropout {settings.dropout}"
        ),
        "loss": "non-saturating (D: BCE with real target 0.9; G: -log D(G(z)))",
        "shipped_generator": f"exponential moving average of G's weights, decay "
        f"{settings.schedule.ema_decay}",
        "batch_norm": "generator only; statistics recomputed over 50 x 256 noise rows after "
        "training and fixed in the graph",
        "parameters_generator": sum(p.numel() for p in gan.Generator(Z_DIM, w).parameters()),
    }


# (measure, which way is better) for the verdict beside the VAE and the flow
HEADLINE = (
    ("frechet_distance", "lower"),
    ("confidence_mean", "higher"),
    ("class_entropy_nats", "higher"),
    ("classifier_score", "higher"),
)


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Each headline measure for the three samplers, and which one is best on it."""
    models = {NAME: metrics, **{k: v for k, v in metrics["compared"].items() if k != "real_test"}}
    out: dict[str, Any] = {}
    for key, better in HEADLINE:
        values = {name: m[key] for name, m in models.items()}
        pick = min if better == "lower" else max
        out[key] = {**values, "best": pick(values, key=lambda n: values[n]), "better": better}
    copies = {
        name: m["nearest_neighbour_binary"]["share_below_test_p5"] for name, m in models.items()
    }
    out["copy_share_below_test_p5"] = copies
    return out


SCORE_NOTE = (
    "every eval_every epochs: Fréchet distance (in-house classifier features) between 1,000 "
    "binarised samples (fixed noise) and the 200 binarised validation digits; the checkpoint "
    "with the lowest is kept (the GAN never sees those 200 rows)"
)
IN_HOUSE = (
    "Fréchet distance, confidence and diversity are in-house numbers: our own MLP classifier "
    "(64-128-64-10, trained on the 1,500 real binarised training digits; features = its 64-d "
    "penultimate layer), not Inception/FID, comparable only with each other. 1,500 samples per "
    "model from z ~ N(0, I) (numpy seed 1) through each shipped graph, binarised the way the "
    "real digits are (level > 7; the GAN's and the flow's y read back as level = floor(17 y); "
    "the VAE's means drawn as Bernoulli with seed 2), scored against the 297 real test digits "
    "beside the real train-vs-test floor; frechet_distance_matched_size repeats both at 297 "
    "rows. confidence = the classifier's top probability; class_entropy of its argmax shares "
    "(ln 10 = 2.30 is uniform); classifier_score = exp E KL(p(y|x) || p(y)) (10 at most). "
    "Copy check: each sample's Euclidean distance to its nearest training digit (binary, and "
    "levels 0-16 for the 17-level models) beside the test digits' own distances; a copying "
    "model puts many samples below the test digits' 5th percentile."
)


def write_dcgan_card(directory: Path, metrics: dict[str, Any]) -> None:
    description = (
        "DCGAN on the 17-level 8x8 digits, uniformly dequantised like the flow's "
        "(y = (level + u) / 17, fresh every epoch). Generator: "
        f"{metrics['architecture']['generator']}; discriminator: "
        f"{metrics['architecture']['discriminator']}; non-saturating loss, Adam "
        "(2e-4, betas 0.5 / 0.999), one D step per G step; the shipped generator is an "
        "exponential moving average of G's weights. The sample graph maps "
        f"z ~ N(0, I) [N, {Z_DIM}] to y [N, 8, 8] in [0, 1] (level = floor(17 y)); no noise "
        "inside and batch norm on fixed statistics, so a row depends on its own z alone. "
        "No likelihood: the checkpoint is chosen by a validation Fréchet distance. " + IN_HOUSE
    )
    report.write_sampler_card(
        directory, NAME, Z_DIM, description, PREPROCESSING, metrics, command=COMMAND
    )


PREPROCESSING = (
    "uniform dequantisation of the 17 grey levels: y = (x + u) / 17, u ~ U[0, 1) per pixel, "
    "fresh every training epoch (the flow's scale); the GAN trains on the 1,300 fit rows"
)


def draw_docs(docs: Path, directory: Path, result: gan.GanFit, settings: Settings) -> None:
    z = np.random.default_rng(0).standard_normal((100, Z_DIM)).astype(np.float32)
    y = report.run_onnx(directory / "sample.onnx", {"z": z}, "x")
    report.save_grid(y, docs / f"{NAME}-samples.png", 10, f"{NAME}: y in [0, 1], seed 0")
    fit_rows = data.N_TRAIN - data.N_VALID
    steps = -(-fit_rows // settings.schedule.batch_size)
    gan.save_loss_plot(
        result, steps, docs / f"{NAME}-loss.png", NAME, "validation Fréchet distance"
    )
