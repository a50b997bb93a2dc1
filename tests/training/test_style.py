"""The style-transfer job (training.style) once with --smoke on the minimal fonts: the shared
normalisation, the split's rules, the ONNX graphs against PyTorch, the evaluation grid and
its baselines in the card, and the kind's contract on the exported directory."""

from __future__ import annotations

import math
import multiprocessing
import shlex
import shutil
import subprocess
import sys
import threading
from dataclasses import asdict, replace
from pathlib import Path
from queue import Queue

import numpy as np
import pytest
import torch

from app import glyphs
from app.registry.cards import read_card
from app.runtime.models import check_artifact
from training.data import bank as banklib
from training.data import chars as charsets
from training.data import css_subsets, fonts, structure
from training.evaluate import checkpoints, geometry, ink_hedge, proxy, ref_draws
from training.evaluate import style as evaluate
from training.style import __main__ as job
from training.style import augment, losses, portable, recover
from training.style import job as style_job
from training.style import train as train_module
from training.style.export import parity
from training.style.model import CrossAttend, MatchAttend, StyleTransfer
from training.style.train import Episodes, TrainConfig, load_checkpoint, new_model, train


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("style")
    assert (
        job.main(
            ["--smoke", "--out", str(root / "models"), "--docs", str(root / "docs"), "--retrain"]
        )
        == 0
    )
    return root


def test_gb2312_and_split() -> None:
    level1, level2 = charsets.gb2312((1,)), charsets.gb2312((2,))
    assert (len(level1), len(level2)) == (3755, 3008)
    ranked = charsets.by_frequency(level1)
    assert ranked[0] == "一"
    assert ranked.index("的") < 50 < ranked.index("骤")
    train, held = charsets.split(2000, 400, 0, set(level1))
    assert len(train) == 2000
    assert len(held) == 400
    assert not set(train) & set(held)
    assert charsets.split(2000, 400, 0, set(level1)) == (train, held)  # seeded


def test_structure_codes() -> None:
    assert structure.layout("明") == 1  # ⿰
    assert {"日", "月"} <= set(structure.leaves("明"))
    vocab = structure.vocabulary(charsets.gb2312((1,)), 64)
    codes = structure.codes(["明", "一"], vocab)
    assert codes.shape == (2, 13 + 64)
    assert codes[0, 1] == 1
    assert codes[0, 13:].sum() >= 1


def test_normalisation_is_shared_and_polarity_free() -> None:
    font = fonts.open_font(fonts.CONTENT)
    grey = font.raw("永")
    a = glyphs.normalize(grey, 64)
    b = glyphs.normalize(1.0 - grey, 64)  # white ink on black
    c = glyphs.normalize(np.pad(grey, 40, constant_values=1.0), 64)  # more margin
    assert np.abs(a - b).max() < 1e-6
    assert np.abs(a - c).mean() < 0.01
    rows, cols = np.nonzero(a > 0)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 == round(glyphs.EM_RATIO * 64)
    with pytest.raises(glyphs.GlyphError, match="blank"):
        glyphs.normalize(np.ones((80, 80), np.float32), 64)


def test_rendering_follows_the_frame_in_worker_processes_and_cache_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bank rendered with another EM_RATIO (ref_draws scores a model in the frame it was
    trained in) is in that frame in every worker process, and caches under another key."""
    chars = ["永", "明"]
    before = fonts.render_key()
    monkeypatch.setattr(glyphs, "EM_RATIO", 0.6)
    out, have = banklib.render_many([fonts.CONTENT], chars, 64, workers=2)
    assert have.all()
    for g in out[0]:
        rows, cols = np.nonzero(g)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 == round(0.6 * 64)
    assert fonts.render_key() != before


def test_an_npm_subsets_missing_glyph_mark_is_a_missing_glyph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An @fontsource family's unicode.json gives each subset file a wider range than the
    characters it holds, and FreeType draws the missing-glyph mark for the rest: those are
    missing glyphs, not glyphs (fonts.Font.notdef). The family here is a subset file that is
    Noto Sans CJK, its range claiming a character Noto lacks."""
    content = fonts.by_name(fonts.CONTENT)
    files = tmp_path / "fake" / "files"
    files.mkdir(parents=True)
    (files / "fake-0-400-normal.woff2").symlink_to(fonts.DEB / content.path)
    (tmp_path / "fake" / "unicode.json").write_text('{"[0]": "U+6C38,U+1F600"}')
    monkeypatch.setattr(fonts, "NPM", tmp_path)
    font = fonts.Font(fonts.FontSpec("fake", "fake", "train", "npm:fake", content.index))
    assert font.has("😀")  # claimed by its range
    assert font.raw("😀").min() == 0.0  # and drawn: the mark has ink
    assert font.notdef("😀")
    assert font.render("😀", 64) is None
    assert not font.notdef("永")
    assert np.array_equal(font.render("永", 64), fonts.open_font(fonts.CONTENT).render("永", 64))


def test_a_css_split_family_is_laid_out_and_rendered_like_an_npm_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """@chinese-fonts/* and cn-fontsource-* packages split a face by CSS: each @font-face block
    a woff2 url and its unicode-range. css_subsets lays them out as @fontsource does, so the
    renderer draws each character from the file whose range holds it. The two files here are
    Noto Sans and Noto Serif (one face index in both), so which one drew a glyph shows."""
    sans, serif = fonts.by_name(fonts.CONTENT), fonts.by_name("noto-serif-sc-regular")
    assert sans.index == serif.index
    package = tmp_path / "package"
    package.mkdir()
    (package / "a1.woff2").symlink_to(fonts.DEB / sans.path)
    (package / "b2.woff2").symlink_to(fonts.DEB / serif.path)
    css = package / "result.css"
    css.write_text(
        '@font-face {font-family: "x";src:local("x"),url("./a1.woff2") format("woff2");'
        "unicode-range:U+6C38,U+548C;}\n"
        "@font-face {font-family: 'x';src: url('b2.woff2');unicode-range: U+4E66-4E67;}\n"
        "@font-face {font-family: 'x';src: url('b2.woff2');}\n"  # no range: not a subset
    )
    npm = tmp_path / "npm"
    assert css_subsets.lay_out(css, npm / "x", "x") == 2
    assert (npm / "x" / "unicode.json").read_text().count("U+") == 3
    monkeypatch.setattr(fonts, "NPM", npm)
    font = fonts.Font(fonts.FontSpec("x", "x", "train", "npm:x", sans.index))
    assert font.has("永")
    assert font.has("书")
    assert not font.has("法")
    assert np.array_equal(font.render("永", 64), fonts.open_font(sans.name).render("永", 64))
    assert np.array_equal(font.render("书", 64), fonts.open_font(serif.name).render("书", 64))
    assert not np.array_equal(font.render("书", 64), fonts.open_font(sans.name).render("书", 64))
    assert font.render("法", 64) is None

    css.write_text("body { color: red }")
    with pytest.raises(ValueError, match="no @font-face block"):
        css_subsets.lay_out(css, tmp_path / "y", "y")
    css.write_text("@font-face {src: url('../up.woff2'); unicode-range: U+6C38;}")
    (tmp_path / "up.woff2").write_bytes(b"")
    with pytest.raises(ValueError, match="not a file beside it"):
        css_subsets.lay_out(css, tmp_path / "z", "z")


def test_heldout_fonts_never_train() -> None:
    train_groups = {s.group for s in fonts.CATALOGUE if s.side == "train"}
    held = [s for s in fonts.CATALOGUE if s.side == "heldout"]
    assert {s.name for s in held} == {
        "ma-shan-zheng",
        "zhi-mang-xing",
        "zcool-qingke-huangyou",
        "lxgw-wenkai",
        "smiley-sans",
    }
    assert not train_groups & {s.group for s in held}
    names = " ".join(s.name + s.path for s in fonts.CATALOGUE).lower()
    for reserved in ("liu-jian-mao-cao", "long-cang", "huninn", "iansui", "wdxl", "klee"):
        assert reserved not in names


def _with_tokens_read(model: StyleTransfer) -> StyleTransfer:
    """The generator's token reads and warp heads start at zero (training starts from the
    plain net): give them weights so a test sees those paths."""
    for module in model.generator.modules():
        if isinstance(module, CrossAttend):
            torch.nn.init.normal_(module.out.weight, std=0.05)
    if model.generator.warp:
        torch.nn.init.normal_(model.generator.affine.weight, std=0.05)
        torch.nn.init.normal_(model.generator.flow.weight, std=0.05)
    return model


@pytest.mark.parametrize(
    ("n_content", "tokens", "warp"), [(1, 0, False), (3, 0, False), (3, 4, False), (3, 0, True)]
)
def test_onnx_matches_pytorch(n_content: int, tokens: int, warp: bool) -> None:
    torch.manual_seed(0)
    model = StyleTransfer(
        struct_dim=20, width=16, n_content=n_content, tokens=tokens, warp=warp
    ).eval()
    _with_tokens_read(model)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        from training.style.export import export_graphs

        export_graphs(model, Path(tmp), 64, 20)
        assert parity(model, Path(tmp), 64, 20) < 1e-4


def test_style_tokens_pool_over_references_and_steer_the_generator() -> None:
    """The style vector is [global | tokens]: the same for the references in any order, and
    the generator's output moves when only the tokens do."""
    torch.manual_seed(0)
    model = _with_tokens_read(StyleTransfer(struct_dim=20, width=16, n_content=3, tokens=4))
    model.eval()
    refs, ref_content = torch.rand(1, 5, 64, 64), torch.rand(1, 5, 3, 64, 64)
    with torch.no_grad():
        style, logvar = model.encoder(refs, ref_content)
        order = torch.tensor([3, 0, 4, 1, 2])
        shuffled, _ = model.encoder(refs[:, order], ref_content[:, order])
        assert style.shape == (1, 128 + 4 * 64)
        assert logvar.shape == (1, 128)
        assert torch.allclose(style, shuffled, atol=1e-5)
        content, struct = torch.rand(1, 3, 64, 64), torch.zeros(1, 20)
        other = style.clone()
        other[:, 128:] = torch.randn(1, 4 * 64)
        moved = model.generator(content, struct, style) - model.generator(content, struct, other)
        assert float(moved.abs().max()) > 1e-3


def test_matched_reads_start_silent_pool_over_references_and_read_what_matches(
    tmp_path: Path,
) -> None:
    """With ``match`` the style vector is [global | one memory slot per reference position]:
    it grows with k, the output does not depend on the references' order, the reads add
    nothing until their zero-initialised projections learn. The serving graphs refuse it (the
    vector is not a fixed width) and a checkpoint reads it back."""
    torch.manual_seed(0)
    model = StyleTransfer(struct_dim=20, width=16, n_content=3, match=8).eval()
    assert model.encoder.keys is model.generator.keys  # one key space for both sides
    refs, ref_content = torch.rand(1, 5, 64, 64), torch.rand(1, 5, 3, 64, 64)
    content, struct = ref_content[:, 2], torch.zeros(1, 20)
    with torch.no_grad():
        style, logvar = model.encoder(refs, ref_content)
        assert style.shape == (1, 128 + 5 * 16 * 16 * 2 * 8)
        assert logvar.shape == (1, 128)
        fewer, _ = model.encoder(refs[:, :2], ref_content[:, :2])
        assert fewer.shape == (1, 128 + 2 * 16 * 16 * 2 * 8)
        other = style.clone()
        other[:, 128:] = torch.randn_like(other[:, 128:])
        silent = model.generator(content, struct, style)
        assert torch.equal(silent, model.generator(content, struct, other))
        for module in model.generator.modules():
            if isinstance(module, MatchAttend):
                torch.nn.init.normal_(module.out.weight, std=0.3)
        written = model.generator(content, struct, style)
        assert float((written - silent).abs().max()) > 1e-3
        order = torch.tensor([3, 0, 4, 1, 2])
        shuffled, _ = model.encoder(refs[:, order], ref_content[:, order])
        assert torch.allclose(written, model.generator(content, struct, shuffled), atol=1e-5)
    from training.style.export import export_graphs

    with pytest.raises(ValueError, match="grows with k unless pooled"):
        export_graphs(model, tmp_path / "graphs", 64, 20)
    bank = _noise_bank()
    trained = new_model(bank, TrainConfig(width=16, match=8)).eval()
    torch.save({"model": trained.state_dict(), "history": []}, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt", bank).generator.key_dim == 8


def test_pooled_matched_reads_have_a_fixed_width_weigh_alike_positions_and_export(
    tmp_path: Path,
) -> None:
    """With ``match_slots`` the memory is pooled by content key into a fixed number of slots:
    the style vector has one width for every k, does not depend on the references' order or
    on repeating them (shares are fractions of the positions), a slot's log share biases the
    read, and the graphs export and agree with PyTorch; a checkpoint reads the slots back."""
    torch.manual_seed(0)
    model = StyleTransfer(struct_dim=20, width=16, n_content=3, match=8, slots=12).eval()
    for module in model.generator.modules():
        if isinstance(module, MatchAttend):
            torch.nn.init.normal_(module.out.weight, std=0.3)
    refs, ref_content = torch.rand(1, 5, 64, 64), torch.rand(1, 5, 3, 64, 64)
    content, struct = ref_content[:, 2], torch.zeros(1, 20)
    with torch.no_grad():
        style, _ = model.encoder(refs, ref_content)
        assert style.shape == (1, model.encoder.dim) == (1, 128 + 12 * (2 * 8 + 1))
        fewer, _ = model.encoder(refs[:, :1], ref_content[:, :1])
        assert fewer.shape == style.shape
        order = torch.tensor([3, 0, 4, 1, 2])
        shuffled, _ = model.encoder(refs[:, order], ref_content[:, order])
        assert torch.allclose(style, shuffled, atol=1e-5)
        twice, _ = model.encoder(refs.repeat(1, 2, 1, 1), ref_content.repeat(1, 2, 1, 1, 1))
        assert torch.allclose(style, twice, atol=1e-5)
        shares = style[0, 128:].reshape(12, 17)[:, -1].exp()
        assert abs(float(shares.sum()) - 1.0) < 1e-3  # every position shared out in full
        written = model.generator(content, struct, style)
        # a slot nobody's positions went to is not read, whatever its key and value hold
        empty = style.clone().reshape(1, -1)
        rows = empty[:, 128:].reshape(1, 12, 17)
        rows[0, 0, -1] = -1e4
        before = model.generator(content, struct, empty)
        rows[0, 0, :-1] = torch.randn(16) * 10
        assert torch.allclose(before, model.generator(content, struct, empty), atol=1e-6)
        # and one that holds the positions is
        rows[0, 0, -1] = 0.0
        assert float((model.generator(content, struct, empty) - before).abs().max()) > 1e-3
        assert float((written - model.generator(content, struct, fewer)).abs().max()) > 1e-4
    from training.style.export import export_graphs

    export_graphs(model, tmp_path / "graphs", 64, 20)
    assert parity(model, tmp_path / "graphs", 64, 20) < 1e-4
    bank = _noise_bank()
    trained = new_model(bank, TrainConfig(width=16, match=8, match_slots=12)).eval()
    torch.save({"model": trained.state_dict(), "history": []}, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt", bank)
    assert (loaded.encoder.slots, loaded.encoder.dim) == (12, 128 + 12 * 17)


def test_warp_starts_at_the_identity_and_moves_the_glyph() -> None:
    """With its heads at zero the warping generator writes what the plain one does; an affine
    head that shifts the sampling grid moves the written glyph's ink by that much."""
    torch.manual_seed(0)
    model = StyleTransfer(struct_dim=20, width=16, n_content=1, warp=True).eval()
    plain = StyleTransfer(struct_dim=20, width=16, n_content=1).eval()
    missing = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing.missing_keys
    assert set(missing.unexpected_keys) == {
        "generator.affine.weight",
        "generator.affine.bias",
        "generator.flow.weight",
        "generator.flow.bias",
    }
    content = torch.zeros(1, 1, 64, 64)
    content[..., 20:44, 12:28] = 1.0  # a block left of centre
    struct, style = torch.zeros(1, 20), torch.randn(1, 128)

    def centre_x(glyph: torch.Tensor) -> float:
        ink = (glyph[0] > 0.5).float()
        return float((ink.sum(0) * torch.arange(64.0)).sum() / ink.sum())

    with torch.no_grad():
        base = model.generator(content, struct, style)
        assert torch.allclose(base, plain.generator(content, struct, style), atol=1e-6)
        # theta[0, 2] = 0.5 tanh(bias) = -0.4: each output pixel reads 0.4 half-widths to
        # its left, so the ink moves right by 0.4 * 32 = 12.8 px
        model.generator.affine.bias[2] = math.atanh(-0.8)
        moved = model.generator(content, struct, style)
    assert 10.0 < centre_x(moved) - centre_x(base) < 15.0


def _noise_bank(n_fonts: int = 3, n_chars: int = 12, size: int = 64) -> banklib.GlyphBank:
    """A glyph bank of random pixels (one content font, 5-dim structure codes): enough for
    the training loop and the networks' shapes, no fonts rendered."""
    rng = np.random.default_rng(0)
    return banklib.GlyphBank(
        fonts=[f"f{i}" for i in range(n_fonts)],
        sides=["train"] * n_fonts,
        groups=[f"f{i}" for i in range(n_fonts)],
        chars=[chr(0x4E00 + i) for i in range(n_chars)],
        n_train_chars=n_chars,
        glyphs=rng.integers(0, 256, (n_fonts, n_chars, size, size), dtype=np.uint8),
        have=np.ones((n_fonts, n_chars), bool),
        content=rng.integers(0, 256, (n_chars, 1, size, size), dtype=np.uint8),
        struct=rng.random((n_chars, 5), dtype=np.float32),
    )


def test_bf16_training_runs_the_networks_in_bfloat16_and_keeps_float32_weights() -> None:
    """TrainConfig.bf16: the convolutions run in bfloat16 under autocast, the weights, the
    prediction the losses see and the optimiser stay float32, and a step's losses track the
    float32 step's."""
    bank = _noise_bank()
    losses = {}
    seen: list[torch.dtype] = []

    def record(module: torch.nn.Module, inputs: object, out: torch.Tensor) -> None:
        seen.append(out.dtype)

    for bf16 in (False, True):
        torch.manual_seed(0)
        cfg = TrainConfig(steps=2, batch=4, width=16, bf16=bf16, log_every=1, restyle=None)
        model = new_model(bank, cfg)
        seen.clear()
        first_convs = [
            next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
            for net in (model.encoder, model.generator)
        ]
        hooks = [conv.register_forward_hook(record) for conv in first_convs]
        history = train(model, bank, cfg, log=lambda row: None)
        for hook in hooks:
            hook.remove()
        want = torch.bfloat16 if bf16 else torch.float32
        assert seen[:2] == [want, want]  # each network's first convolution, the first step
        assert all(p.dtype == torch.float32 for p in model.parameters())
        losses[bf16] = history[0]
    for key in ("l1", "ssim"):
        assert losses[True][key] == pytest.approx(losses[False][key], rel=0.02)


def test_the_job_trains_in_bfloat16_only_where_the_device_runs_it_natively() -> None:
    """--bf16's default: on where oneDNN has bfloat16 kernels (an AVX-512 or AMX CPU), float32
    with a note elsewhere (an AVX2-only CPU ran a bfloat16 step 10-15x slower than float32);
    an explicit --bf16/--no-bf16 wins."""
    avx512 = torch.backends.cpu.get_cpu_capability() in ("AVX512", "AVX512_BF16", "AMX")
    default = job.parse([])
    assert default.bf16 is avx512
    assert (default.bf16_note is None) is avx512
    elsewhere = job.parse(["--device", "mps"])
    assert elsewhere.bf16 is False
    assert "float32" in elsewhere.bf16_note
    assert "--bf16 forces" in elsewhere.bf16_note
    for flag, want in (("--bf16", True), ("--no-bf16", False)):
        for device in ("cpu", "mps"):
            chosen = job.parse([flag, "--device", device])
            assert chosen.bf16 is want
            assert chosen.bf16_note is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_the_job_refuses_cuda_where_there_is_none(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        job.parse(["--device", "cuda"])
    assert stop.value.code == 2
    assert "sees no CUDA device" in capsys.readouterr().err


def test_the_job_refuses_a_malformed_cycle(capsys: pytest.CaptureFixture[str]) -> None:
    bad_cycles = (
        "5000",
        "0:1e-3",
        "5000:-1",
        "x:y",
        "5000:6e-4:-1",
        "5000:6e-4:9",
        "5000:6e-4:0:1.5",
        "5000:6e-4:0:-0.1",
        "1:1:1:1:1",
    )
    for bad in bad_cycles:
        with pytest.raises(SystemExit) as stop:
            job.parse(["--then", bad])
        assert stop.value.code == 2
        assert "STEPS" in capsys.readouterr().err
    assert job.parse(
        ["--then", "5000:6e-4", "--then", "10:0:1.5", "--then", "7:1e-3:0:0.3"]
    ).then == [
        (5000, 6e-4, 0.0, 0.0),
        (10, 0.0, 1.5, 0.0),
        (7, 1e-3, 0.0, 0.3),
    ]
    # --from names where --then's cycles start: alone it is refused
    with pytest.raises(SystemExit) as stop:
        job.parse(["--from", "d237b11c4bafcc75"])
    assert stop.value.code == 2
    assert "--then" in capsys.readouterr().err
    # nor with --retrain, which would overwrite that checkpoint with the plain run's
    with pytest.raises(SystemExit) as stop:
        job.parse(["--from", "d237b11c4bafcc75", "--then", "10:1e-3", "--retrain"])
    assert stop.value.code == 2
    assert "--retrain" in capsys.readouterr().err
    # --kl-weight: a finite weight >= 0, the default TrainConfig's
    assert job.parse([]).kl_weight == train_module.TrainConfig.kl_weight
    assert job.parse(["--kl-weight", "1e-4"]).kl_weight == 1e-4
    for bad in ("-1e-4", "x", "nan", "inf"):
        with pytest.raises(SystemExit) as stop:
            job.parse([f"--kl-weight={bad}"])
        assert stop.value.code == 2
        assert "want a weight >= 0" in capsys.readouterr().err
    # --restyle: Restyle options by name, checked as the command line is read
    assert job.parse([]).restyle is None
    chosen = job.parse(["--restyle", "warp=0.1,pressure=0.8"]).restyle
    assert chosen == augment.Restyle(warp=0.1, pressure=0.8)
    for bad, why in (
        ("tilt=0.1", "Restyle has no 'tilt'"),
        ("warp=x", "want warp=a number in [0, inf]"),
        ("warp=-0.1", "want warp=a number in [0, inf]"),
        ("pressure=inf", "want pressure=a number in [0, inf]"),
        ("p=1.5", "want p=a number in [0, 1]"),
        ("max_stretch=0.5", "want max_stretch=a number in [1, inf]"),
        ("warp", "want warp=a number"),
    ):
        with pytest.raises(SystemExit) as stop:
            job.parse(["--restyle", bad])
        assert stop.value.code == 2
        assert why in capsys.readouterr().err


def test_focus_draws_the_worst_fitted_groups_more_and_keeps_the_uniform_stream() -> None:
    """TrainConfig.focus: groups drawn in proportion to their running 1 - SSIM ** focus; at 0
    the draws are the uniform ones, and the checkpoint key does not name the option."""
    bank = _noise_bank(n_fonts=3)
    fonts, chars = [0, 1, 2], np.arange(12)
    plain, zero = Episodes(bank, fonts, chars, 0), Episodes(bank, fonts, chars, 0, focus=0.0)
    for _ in range(3):
        pairs = zip(plain.sample(8, 2), zero.sample(8, 2), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    assert zero.chances() is None
    focused = Episodes(bank, fonts, chars, 0, focus=1.0)
    assert focused.chances() == pytest.approx([1 / 3] * 3)  # nothing seen yet
    focused.picked = np.array([0, 1, 1])
    focused.observe(np.array([0.6, 0.2, 0.1]))
    # group 1's two episodes average 0.15; group 2, unseen, stands at the mean of the seen
    assert focused.misfit[:2] == pytest.approx([0.6, 0.15])
    assert focused.chances() == pytest.approx(np.array([0.6, 0.15, 0.375]) / 1.125)
    focused.picked = np.array([0])
    focused.observe(np.array([0.2]))  # a running mean, not the last batch
    assert focused.misfit[0] == pytest.approx(0.95 * 0.6 + 0.05 * 0.2)
    focused.misfit[:] = [0.8, 0.1, 0.1]
    drawn = []
    for _ in range(20):
        focused.sample(64, 1)
        drawn.append(focused.picked)
    drawn = np.concatenate(drawn)
    assert np.bincount(drawn, minlength=3)[0] > 0.7 * len(drawn)  # expected 0.8
    cfg = TrainConfig()
    key = job.checkpoint_key(cfg, 64, bank, ["a"], [])
    assert key == job.checkpoint_key(replace(cfg, focus=0.0), 64, bank, ["a"], [])
    assert key != job.checkpoint_key(replace(cfg, focus=1.0), 64, bank, ["a"], [])


def test_loaders_draw_their_own_streams_in_worker_processes() -> None:
    """TrainConfig.loaders: each worker draws the stream of seed + 1000 * (i + 1); training
    with two of them steps as usual and leaves no process behind; at 0 the checkpoint key does
    not name the option, and focus, which needs the step's fit, is refused."""
    bank = _noise_bank(n_fonts=3)
    cfg = TrainConfig(steps=4, batch=4, width=16, bf16=False, log_every=2, loaders=2)
    queue: Queue = Queue(maxsize=1)
    stop = threading.Event()
    worker = threading.Thread(target=train_module._loader, args=(bank, cfg, 1, queue, stop))
    worker.start()
    try:
        first = queue.get(timeout=30)
    finally:
        stop.set()
        worker.join()
    seed = cfg.seed + 2000
    own = Episodes(bank, bank.font_index("train"), bank.train_chars, seed)
    want = train_module._draw(
        own, cfg, np.random.default_rng(seed + 1), torch.Generator().manual_seed(seed + 2)
    )
    assert all(torch.equal(a, b) for a, b in zip(first, want, strict=True))
    torch.manual_seed(0)
    history = train(new_model(bank, cfg), bank, cfg, log=lambda row: None)
    assert [row["step"] for row in history] == [2, 4]
    assert all(math.isfinite(row["l1"]) for row in history)
    assert not multiprocessing.active_children()
    with pytest.raises(ValueError, match="focus"):
        train(new_model(bank, cfg), bank, replace(cfg, focus=1.0))
    key = job.checkpoint_key(TrainConfig(), 64, bank, ["a"], [])
    assert key == job.checkpoint_key(replace(TrainConfig(), loaders=0), 64, bank, ["a"], [])
    assert key != job.checkpoint_key(replace(TrainConfig(), loaders=2), 64, bank, ["a"], [])
    assert job.parse(["--loaders", "3"]).loaders == 3
    for bad in (["--loaders", "-1"], ["--loaders", "2", "--then", "10:1e-3:1"]):
        with pytest.raises(SystemExit):
            job.parse(bad)


def test_ema_ends_the_cycle_on_the_moving_average_of_its_steps_weights() -> None:
    """TrainConfig.ema: the weights a cycle ends with are the moving average of the weights
    after each step (decay min(ema, (1 + step) / (10 + step))), computed here beside a plain run
    of the same stream; at 0 the checkpoint key does not name the option."""
    bank = _noise_bank(n_fonts=3)
    cfg = TrainConfig(steps=6, batch=4, width=16, bf16=False, log_every=1)
    torch.manual_seed(0)
    plain = new_model(bank, cfg)
    average = [p.detach().clone() for p in plain.parameters()]

    def follow(row: dict[str, float]) -> None:
        decay = min(0.5, row["step"] / (9 + row["step"]))
        for a, w in zip(average, plain.parameters(), strict=True):
            a.mul_(decay).add_(w.detach(), alpha=1 - decay)

    train(plain, bank, cfg, log=follow)
    torch.manual_seed(0)
    averaged = new_model(bank, replace(cfg, ema=0.5))
    train(averaged, bank, replace(cfg, ema=0.5), log=lambda row: None)
    ends = list(averaged.parameters())
    assert all(torch.allclose(a, e, atol=1e-6) for a, e in zip(average, ends, strict=True))
    last = list(plain.parameters())
    assert not all(torch.allclose(p, e, atol=1e-6) for p, e in zip(last, ends, strict=True))
    key = job.checkpoint_key(TrainConfig(), 64, bank, ["a"], [])
    assert key == job.checkpoint_key(replace(TrainConfig(), ema=0.0), 64, bank, ["a"], [])
    assert key != job.checkpoint_key(replace(TrainConfig(), ema=0.999), 64, bank, ["a"], [])
    assert job.parse(["--ema", "0.999"]).ema == 0.999
    for bad in ("1", "-0.1"):
        with pytest.raises(SystemExit):
            job.parse(["--ema", bad])


def test_portable_trains_without_the_card_code() -> None:
    """A lent GPU machine has torch and numpy but not the service's packages (pydantic):
    ``portable``'s pack and train reach no card code (a module-level import did, 2026-12-04)."""
    blocked = "import sys; sys.modules['pydantic'] = None; import training.style.portable as p"
    run = subprocess.run(
        [sys.executable, "-c", f"{blocked}; p.unpack; p.fit_steps; p._train"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr


def test_checkpoints_are_scored_on_the_headline_and_seen_cells(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """training.evaluate.checkpoints: a checkpoint file is scored per held-out font, on the
    headline and the seen-fonts cells; a missing file is refused before anything renders."""
    bank = _noise_bank(n_fonts=4)
    bank.sides[3] = "heldout"
    bank.n_train_chars = 8
    cfg = TrainConfig(steps=2, batch=4, width=16, bf16=False)
    model = new_model(bank, cfg)
    train(model, bank, cfg, log=lambda row: None)
    path = tmp_path / "run.pt"
    torch.save({"model": model.state_dict()}, path)
    cells = checkpoints.scores([path], bank, 2, seen=True)[path]
    assert set(cells) == {"headline", "f3", "seen fonts"}
    assert cells["headline"] == cells["f3"]  # one held-out font
    assert all(0 < cell["l1"] < 1 for cell in cells.values())
    with pytest.raises(SystemExit) as stop:
        checkpoints.main([str(tmp_path / "missing.pt")])
    assert stop.value.code == 2
    assert "no such checkpoint" in capsys.readouterr().err


def test_portable_bank_trains_elsewhere_and_the_job_adopts_the_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """training.style.portable: the packed bank holds what training reads (the training fonts'
    training characters, content, structure) and nothing held out; a run on it lands in the
    job's cache under the job's own key for the same arguments (a --restyle among them), and the
    job reuses it."""
    argv = ["--smoke", "--lr", "1.3e-3", "--restyle", "warp=0.1"]
    args = job.parse(argv)
    bank, vocab = job.split(args)
    packed = tmp_path / "bank.xz"
    portable.pack(bank, packed)
    back = portable.unpack(packed)
    train_fonts, n = bank.font_index("train"), bank.n_train_chars
    held = bank.font_index("heldout")
    assert back.fonts == bank.fonts
    assert back.chars == bank.chars
    assert back.groups == bank.groups
    assert np.array_equal(back.glyphs[train_fonts, :n], bank.glyphs[train_fonts, :n])
    assert np.array_equal(back.have[train_fonts, :n], bank.have[train_fonts, :n])
    assert held
    assert not back.glyphs[held].any()
    assert not back.have[held].any()
    assert not back.glyphs[:, n:].any()
    assert bank.glyphs[train_fonts, n:].any()
    assert np.array_equal(back.content, bank.content)
    assert np.array_equal(back.struct, bank.struct)
    run = tmp_path / "run.pt"
    assert portable.main(["train", str(packed), str(run), *argv, "--no-bf16"]) == 0
    assert torch.load(run, weights_only=False)["steps"] == 30  # --smoke's
    assert portable.main(["adopt", str(run)]) == 0
    _, keys = job.plan(job.parse([*argv, "--no-bf16"]), bank, vocab)
    out = capsys.readouterr().out
    assert f"{job.CACHE / f'{keys[0]}.pt'}" in out
    assert (
        "python -m training.style --smoke --lr 1.3e-3 --restyle warp=0.1 --no-bf16 --steps 30"
        in out
    )
    plain = job.without([*argv, "--no-bf16"], ("--restyle",))
    assert keys[0] != job.plan(job.parse(plain), bank, vocab)[1][0]
    commands = torch.load(job.CACHE / f"{keys[0]}.pt", weights_only=False)["commands"]
    assert commands == [
        "python -m training.style.portable pack BANK",
        f"python -m training.style.portable train BANK {run} {' '.join(argv)} --no-bf16 (cpu)",
        f"python -m training.style.portable adopt {run}",
    ]
    assert job.main([*argv, "--no-bf16", "--train-only"]) == 0
    assert f"reusing {job.CACHE / f'{keys[0]}.pt'}" in capsys.readouterr().out
    # a cycle trained here from the adopted checkpoint keeps the commands that trained its start
    more = [*argv, "--no-bf16", "--then", "3:1e-4", "--train-only"]
    _, cycle_keys = job.plan(job.parse(more), bank, vocab)
    assert job.main(more) == 0
    cycle = torch.load(job.CACHE / f"{cycle_keys[1]}.pt", weights_only=False)
    assert cycle["commands"] == commands
    (job.CACHE / f"{cycle_keys[1]}.pt").unlink()
    (job.CACHE / f"{keys[0]}.pt").unlink()
    # the card's command: the job's own arguments (not where it writes), after those commands
    args = job.parse(["--batch", "64", "--out", "x", "--docs=y", "--retrain"])
    assert style_job.command(args) == 'make train-style ARGS="--batch 64"'
    assert style_job.command(job.parse(["--out", "x"])) == "make train-style"
    args.trained_by = commands
    assert style_job.command(args) == " && ".join([*commands, 'make train-style ARGS="--batch 64"'])


def _stroke_glyphs() -> np.ndarray:
    """Three glyphs [3, 64, 64] in [0, 1]: a 6 px vertical bar at x 20, the same at x 24, and a
    2 px bar at x 40, anti-aliased on one edge."""
    out = np.zeros((3, 64, 64))
    out[0, 10:54, 20:26] = 1.0
    out[1, 10:54, 24:30] = 1.0
    out[2, 10:54, 40:42] = 1.0
    out[:, 10:54, 19] = out[:, 10:54, 20] * 0.4  # a soft edge
    return out


def test_blend_interpolates_signed_distances_and_reports_lost_ink() -> None:
    bars = _stroke_glyphs()
    mixed, kept = augment.blend(bars[:1], bars[:1], 0.3)
    assert np.allclose(mixed, bars[:1])
    assert kept == pytest.approx([1.0])
    mixed, kept = augment.blend(bars[:1], bars[1:2], 0.5)
    cols = np.flatnonzero(mixed[0, 30] >= 0.5)
    assert (cols.min(), cols.max()) == (22, 27)  # halfway, as wide as both: not two faint bars
    assert kept[0] > 0.9
    # a thin stroke and a distant one: neither's signed distance survives the mean
    mixed, kept = augment.blend(bars[2:3], bars[:1], 0.5)
    assert kept[0] < train_module.BLEND_KEEP
    refitted = augment.refit(torch.from_numpy(bars[None, :1].astype(np.float32)))[0, 0].numpy()
    rows = np.flatnonzero(refitted.max(1) >= 0.5)
    assert rows.max() - rows.min() + 1 == pytest.approx(glyphs.EM_RATIO * 64, abs=1)


def test_blended_episodes_mix_two_groups_and_keep_the_stream_without() -> None:
    """TrainConfig.blend: that share of episodes writes its references and target in a style
    between its font and one of its group's nearest; at 0 the draws are the old ones and the
    checkpoint key does not name the option."""
    bank = _noise_bank(n_fonts=4)
    bank.glyphs[:] = 0
    # no blend of two at weights 0.25-0.75 comes within 0.5 px of a third's width
    widths = np.array([4, 6, 16, 18])
    for f, w in enumerate(widths):  # a vertical bar per font, centred, its own width
        bank.glyphs[f, :, 10:54, 32 - w // 2 : 32 + w // 2] = 255
    bank.have[3, 5:] = False
    fonts, chars = [0, 1, 2, 3], np.arange(12)
    plain, zero = Episodes(bank, fonts, chars, 0), Episodes(bank, fonts, chars, 0, blend=0.0)
    for _ in range(3):
        pairs = zip(plain.sample(8, 2), zero.sample(8, 2), strict=True)
        assert all(torch.equal(a, b) for a, b in pairs)
    mixing = Episodes(bank, fonts, chars, 0, blend=1.0)
    # nearest by L1: the nearer widths (ties to the lower index)
    assert [list(n) for n in mixing.neighbours(chars, 2)] == [[1, 2], [0, 2], [3, 1], [2, 1]]
    refs, _, target, _, _ = mixing.sample(16, 3)
    # the bar's width along its middle row, in the frame's scale (44 px of height refitted)
    seen = torch.cat([refs, target[:, None]], 1)[:, :, 32].sum(-1).numpy() * 44 / 64 / 0.75
    assert np.ptp(seen, axis=1).max() < 0.2  # one style per episode, references and target
    # every episode between two fonts' widths: none is any font's own
    assert np.abs(seen[:, :1] - widths[None]).min() > 0.3
    cfg = TrainConfig()
    key = job.checkpoint_key(cfg, 64, bank, ["a"], [])
    assert key == job.checkpoint_key(replace(cfg, blend=0.0), 64, bank, ["a"], [])
    assert key != job.checkpoint_key(replace(cfg, blend=0.3), 64, bank, ["a"], [])


def test_training_with_focus_follows_the_networks_misfit() -> None:
    bank = _noise_bank(n_fonts=3)
    torch.manual_seed(0)
    rows: list[dict] = []
    cfg = TrainConfig(steps=3, batch=6, width=16, bf16=False, log_every=1, focus=1.0)
    train(new_model(bank, cfg), bank, cfg, log=rows.append)
    chances = rows[-1]["focus"]
    assert set(chances) == {"f0", "f1", "f2"}
    assert sum(chances.values()) == pytest.approx(1.0, abs=1e-3)
    # the steps' misfits moved them off the uniform third (seeded: 0.330 to 0.335)
    assert max(chances.values()) - min(chances.values()) > 1e-3


def test_ssim_per_glyph_averages_to_the_batch_ssim() -> None:
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 32, 32, generator=gen), torch.rand(4, 32, 32, generator=gen)
    y[0] = x[0]
    each = losses.ssim_per_glyph(x, y)
    assert each.shape == (4,)
    assert each[0] == pytest.approx(1.0)
    assert each[1:].max() < 0.2
    assert each.mean() == pytest.approx(float(losses.ssim(x, y)), abs=1e-6)


def test_recover_reads_a_version_back_into_its_training_weights(smoke: Path) -> None:
    directory = smoke / "models" / "glyph-style" / "1"
    key = read_card(directory).metrics["training"]["checkpoint"]
    trained = torch.load(job.CACHE / f"{key}.pt", weights_only=False)["model"]
    got = recover.recover(directory).state_dict()
    assert list(got) == list(trained)
    # GroupNorm's scale and shift are the exporter's renamed [C, 1, 1] constants
    assert any(name.endswith(".1.weight") for name in got)
    for name, tensor in trained.items():
        assert torch.equal(got[name], tensor), name


def test_a_cycle_continues_from_the_cached_run_under_its_own_key(
    smoke: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = read_card(smoke / "models" / "glyph-style" / "1").metrics["training"]["checkpoint"]
    start = torch.load(job.CACHE / f"{key}.pt", weights_only=False)["model"]
    # at learning rate 0 (AdamW's decay scales with it) the weights cannot move from the start
    argv = ["--smoke", "--then", "30:0", "--train-only", "--out", str(tmp_path)]
    args = job.parse(argv)
    _, keys = job.plan(args, *job.split(args))
    assert keys[0] == key
    assert keys[1] != key  # its own key: a continuation never overwrites its start
    path = job.CACHE / f"{keys[1]}.pt"
    path.unlink(missing_ok=True)  # an earlier run's
    capsys.readouterr()
    assert job.main(argv) == 0
    out = capsys.readouterr().out
    assert f"reusing {job.CACHE / f'{key}.pt'}" in out  # the smoke run's cycle is not retrained
    assert [line for line in out.splitlines() if line.startswith("wrote ")] == [f"wrote {path}"]
    after = torch.load(path, weights_only=False)["model"]
    for name, tensor in start.items():
        assert torch.equal(after[name], tensor), name
    # run again, the continuation itself is reused
    assert job.main(argv) == 0
    assert f"reusing {path}" in capsys.readouterr().out


def test_cycles_start_from_a_named_checkpoint(
    smoke: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--from KEY: the cycles start from that cached checkpoint, not from the run the arguments
    describe (here one of another learning rate, never trained); a blended cycle trains from
    it."""
    key = read_card(smoke / "models" / "glyph-style" / "1").metrics["training"]["checkpoint"]
    argv = ["--smoke", "--lr", "1.1e-3", "--then", "30:0:0:0.5", "--train-only"]
    args = job.parse([*argv, "--out", str(tmp_path)])
    cycles, plain = job.plan(args, *job.split(args))
    assert plain[0] != key  # without --from that run would be trained first
    # --kl-weight reaches every cycle and names another run; at its default the key is the same
    heavier, other = job.plan(job.parse([*argv, "--kl-weight", "1e-4"]), *job.split(args))
    assert [c.kl_weight for c in heavier] == [1e-4, 1e-4]
    assert [c.kl_weight for c in cycles] == [train_module.TrainConfig.kl_weight] * 2
    assert other[0] != plain[0]
    default = job.parse([*argv, "--kl-weight", str(train_module.TrainConfig.kl_weight)])
    assert job.plan(default, *job.split(args))[1] == plain
    # --restyle likewise: every cycle's, another run; the defaults named are the same run
    styled, other = job.plan(job.parse([*argv, "--restyle", "warp=0.1,p=0.6"]), *job.split(args))
    drawn = [(c.restyle.warp, c.restyle.p, c.restyle.slant) for c in styled]
    assert drawn == [(0.1, 0.6, 0.3)] * 2
    assert [c.restyle for c in cycles] == [augment.Restyle()] * 2
    assert other[0] != plain[0]
    assert other[1] != plain[1]
    default = job.parse([*argv, "--restyle", "warp=0,pressure=0,p=0.5"])
    assert job.plan(default, *job.split(args))[1] == plain
    args = job.parse([*argv, "--from", key, "--out", str(tmp_path)])
    bank, vocab = job.split(args)
    cycles, keys = job.plan(args, bank, vocab)
    assert keys[0] == key
    assert cycles[1].blend == 0.5
    assert keys[1] == job.checkpoint_key(cycles[1], 64, bank, vocab, [key])
    (job.CACHE / f"{keys[1]}.pt").unlink(missing_ok=True)
    capsys.readouterr()
    assert job.main([*argv, "--from", key, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"reusing {job.CACHE / f'{key}.pt'}" in out
    assert f"wrote {job.CACHE / f'{keys[1]}.pt'}" in out
    # a chain whose later cycle is cached (a recovered shipped version) does without the first
    gone = "0000000000000000"
    later = job.CACHE / f"{job.checkpoint_key(cycles[1], 64, bank, vocab, [gone])}.pt"
    shutil.copyfile(job.CACHE / f"{keys[1]}.pt", later)
    try:
        assert job.main([*argv, "--from", gone, "--out", str(tmp_path)]) == 0
        assert f"reusing {later}" in capsys.readouterr().out
    finally:
        later.unlink()
    with pytest.raises(SystemExit, match="recover"):
        job.main([*argv, "--from", gone, "--out", str(tmp_path)])


@pytest.mark.parametrize(("width", "warp"), [(16, False), (32, True)])
def test_load_checkpoint_reads_width_and_warp_from_the_weights(
    tmp_path: Path, width: int, warp: bool
) -> None:
    bank = _noise_bank()
    torch.manual_seed(0)
    model = _with_tokens_read(new_model(bank, TrainConfig(width=width, warp=warp))).eval()
    torch.save({"model": model.state_dict(), "history": []}, tmp_path / "c.pt")
    loaded = load_checkpoint(tmp_path / "c.pt", bank)
    assert loaded.generator.warp == warp
    content, struct = torch.rand(2, 1, 64, 64), torch.rand(2, 5)
    style = torch.randn(2, 128)
    with torch.no_grad():
        assert torch.equal(
            loaded.generator(content, struct, style), model.generator(content, struct, style)
        )


def _export_one_font_graphs(model: StyleTransfer, directory: Path) -> None:
    """Graphs shaped as before the content fonts became a channel axis: ``ref_content``
    [B, K, H, W] and ``content`` [T, H, W]."""
    from training.style.export import export_graph

    class Encoder(torch.nn.Module):
        def forward(self, refs: torch.Tensor, ref_content: torch.Tensor) -> torch.Tensor:
            return model.encoder(refs, ref_content.unsqueeze(2))[0]

    class Generator(torch.nn.Module):
        def forward(self, content, struct, style):  # type: ignore[no-untyped-def]
            return model.generator(content.unsqueeze(1), struct, style)

    b, k, t = (torch.export.Dim(n, min=1, max=64) for n in "bkt")
    examples = (torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    export_graph(Encoder(), examples, directory, "encoder", ({0: b, 1: k}, {0: b, 1: k}))
    examples = (torch.rand(3, 64, 64), torch.rand(3, 16), torch.randn(3, 128))
    export_graph(Generator(), examples, directory, "generator", ({0: t}, {0: t}, {0: t}))


def test_one_font_atlas_still_serves(tmp_path: Path) -> None:
    """Artifacts from before the three content fonts ([C, H, W] atlas, graphs without a font
    axis) pass the kind's contract and write glyphs."""
    from app.kinds.style_transfer.graph import StyleTransferKind
    from app.registry.cards import sha256_file
    from app.runtime.models import load_graphs
    from training.export import write_card
    from training.style.export import GRAPHS

    torch.manual_seed(0)
    model = StyleTransfer(struct_dim=16, width=16, n_content=1).eval()
    _export_one_font_graphs(model, tmp_path)
    chars = "永和书法"
    content = np.stack([fonts.open_font(fonts.CONTENT).render(c, 64) for c in chars])
    np.savez_compressed(
        tmp_path / "atlas.npz",
        codepoints=np.array([ord(c) for c in chars], np.int32),
        content=(content * 255).astype(np.uint8),
        struct=np.packbits(np.zeros((4, 16), bool), axis=1),
        struct_dim=np.array(16, np.int32),
    )
    card = write_card(
        tmp_path,
        name="old-style",
        kind="style_transfer",
        fmt="onnx",
        graphs=GRAPHS,
        files={"atlas.npz": sha256_file(tmp_path / "atlas.npz")},
        signature={"size": 64, "style_dim": 128, "struct_dim": 16, "chars": chars},
        code_revision="test",
    )
    check_artifact(tmp_path, card)
    kind = StyleTransferKind()
    graphs = load_graphs(tmp_path, card, "cpu", 1)
    refs = content[None, :2].astype(np.float32)
    enc = kind.run(
        card.signature.as_dict(),
        graphs,
        {"refs": refs, "ref_codepoint": np.array([[ord("永"), ord("和")]])},
    )
    out = kind.run(
        card.signature.as_dict(),
        graphs,
        {"codepoint": np.array([ord("书"), ord("法")]), "style": enc["style"].repeat(2, 0)},
    )
    assert out["glyph"].shape == (2, 64, 64)


def test_smoke_job_writes_a_servable_model_and_its_evaluation(smoke: Path) -> None:
    directory = smoke / "models" / "glyph-style" / "1"
    card = read_card(directory)
    assert card.kind == "style_transfer"
    assert set(card.graphs) == {"encoder", "generator"}
    assert "atlas.npz" in card.files
    check_artifact(directory, card)  # the kind's contract, as registration runs it
    assert card.signature.content_fonts == list(fonts.CONTENTS)
    with np.load(directory / "atlas.npz") as atlas:
        content = atlas["content"]
    assert content.shape == (len(card.signature.chars), len(fonts.CONTENTS), 64, 64)
    # the channels are different fonts: sans, serif and kai draw a character differently
    first = content[0].astype(np.float32) / 255.0
    assert np.abs(first[0] - first[1]).mean() > 0.02
    assert np.abs(first[0] - first[2]).mean() > 0.02
    metrics = card.metrics
    assert metrics["onnx_parity_max_abs_diff"] < 1e-4
    grid = metrics["grid"]
    assert set(grid) == {
        "unseen_fonts_unseen_chars",
        "seen_fonts_unseen_chars",
        "unseen_fonts_seen_chars",
    }
    row = grid["unseen_fonts_unseen_chars"]["k4"]
    for baseline in ("model", "content_copy", "nearest_font", "oracle_font"):
        assert 0.0 <= row[baseline]["l1"] <= 1.0
        assert -1.0 <= row[baseline]["ssim"] <= 1.0
    assert row["content_accuracy"]["ceiling_real_glyphs"] >= 0.0
    assert set(metrics["targets"]) >= {
        "unseen_fonts_unseen_chars.k4.l1",
        "seen_fonts_unseen_chars.k4.ssim",
    }
    assert card.data["heldout_fonts"] == ["lxgw-wenkai"]
    assert (smoke / "docs" / "glyph-style-lxgw-wenkai.png").exists()
    # every training font but the content fonts is a seen font, its groups weighing alike
    seen = grid["seen_fonts_unseen_chars"]["k4"]
    assert set(seen["per_font"]) == set(card.data["train_fonts"]) - set(fonts.CONTENTS)
    assert seen["weighting"] == "near-duplicate groups"
    # the second layer, the rendered output over reference draws (issue 52), in the same run
    layer = metrics["rendered"]
    assert set(layer["unseen_fonts_unseen_chars"]) == {"k1", "k4"}
    assert set(layer["unseen_fonts_unseen_chars"]["k4"]["per_font"]) == {"lxgw-wenkai"}
    assert layer["protocol"]["draws"] == 2
    assert "rendered_edge_width_128" in layer["targets"]


def test_ref_draws_refit_drops_faint_ink_and_fits_the_frame() -> None:
    glyph = np.zeros((64, 64), np.float32)
    glyph[10:20, 30:50] = 0.9  # a 10 x 20 box, off centre
    glyph[0, 0] = 0.1  # faint noise, under the floor
    out = ref_draws.refit(glyph, 0.15, 0.75)
    rows = np.flatnonzero(out.max(axis=1) > 0)
    cols = np.flatnonzero(out.max(axis=0) > 0)
    assert (cols[0], cols[-1] + 1) == (8, 56)  # the longer side at 0.75 * 64, centred
    assert (rows[0], rows[-1] + 1) == (20, 44)
    faint = np.full((64, 64), 0.1, np.float32)
    assert ref_draws.refit(faint, 0.15, 0.75) is faint  # nothing left to fit: unchanged


def test_ref_draws_leave_one_out_is_the_median_over_reference_subsets() -> None:
    calls: list[list[int]] = []

    def generate(refs: np.ndarray, ref_chars: np.ndarray, targets: np.ndarray) -> np.ndarray:
        calls.append(ref_chars.tolist())
        # each target written as the mean of its references' single pixel values
        return np.full((len(targets), 1, 1), refs.mean(), np.float32)

    refs = np.array([0.0, 0.1, 0.2, 0.9], np.float32).reshape(4, 1, 1)
    out = ref_draws.leave_one_out(generate)(refs, np.arange(4), np.arange(3))
    assert calls == [[0, 1, 2, 3], [1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]]
    # outputs 0.3, 0.4, 0.3667, 0.3333, 0.1: their median, not their mean (0.3)
    assert out.shape == (3, 1, 1)
    np.testing.assert_allclose(out, 1.0 / 3.0, rtol=1e-6)
    calls.clear()
    one = ref_draws.leave_one_out(generate)(refs[:1], np.arange(1), np.arange(2))
    assert calls == [[0]]  # one reference: its own output
    np.testing.assert_allclose(one, 0.0)


def test_ref_draws_per_font_scores_each_fonts_glyphs_alone() -> None:
    bank = _noise_bank(n_fonts=3, n_chars=4)
    truth = np.zeros((5, 16, 16), np.float32)
    out = truth.copy()
    out[3:] = 0.5  # the last two glyphs, font 0's, wrong by 0.5 everywhere
    written = np.array([2, 2, 2, 0, 0])
    fonts = ref_draws.per_font(bank, out, truth, written)
    assert list(fonts) == [bank.fonts[2], bank.fonts[0]]  # in the cell's order, only those in it
    assert fonts[bank.fonts[2]]["l1"] == 0.0
    assert fonts[bank.fonts[0]]["l1"] == 0.5


def test_ref_draws_calibration_is_monotone_and_lowers_l1() -> None:
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 1, (200, 8, 8)).astype(np.float32)
    truth = (pred > 0.3).astype(np.float32)  # a soft output whose ink starts at 0.3, not 0.5
    knots, values = ref_draws.fit_calibration(pred, truth)
    assert np.all(np.diff(values) >= 0)
    assert values.min() >= 0
    assert values.max() <= 1
    mapped = np.interp(pred, knots, values)
    assert np.interp(0.1, knots, values) == 0.0
    assert np.interp(0.6, knots, values) == 1.0
    assert np.abs(mapped - truth).mean() < 0.02 < np.abs(pred - truth).mean()
    # an output already at its medians maps (nearly) to itself
    knots, values = ref_draws.fit_calibration(truth, truth)
    assert np.abs(np.interp(truth, knots, values) - truth).max() < 1e-6


def test_ref_draws_contrast_steepens_about_one_half() -> None:
    pred = np.array([[[0.0, 0.3, 0.5, 0.6, 0.9]]], np.float32)
    args = ref_draws.argparse.Namespace(contrast=[2.0], served=False, refit=None)
    out = ref_draws.variants(pred, args, 0.75)
    assert list(out) == ["raw", "contrast 2"]
    assert out["raw"] is pred
    np.testing.assert_allclose(out["contrast 2"], [[[0.0, 0.1, 0.5, 0.7, 1.0]]], atol=1e-6)


def test_ink_hedge_thicken_adds_ink_by_its_amount_and_thins_below_zero() -> None:
    glyph = np.zeros((1, 9, 9), np.float32)
    glyph[0, 3:6, 4] = 1.0  # a 1-pixel vertical stroke
    assert ink_hedge.thicken(glyph, 0.0) is glyph
    full = ink_hedge.thicken(glyph, 1.0)
    np.testing.assert_array_equal(full[0, 2:7, 3:6], 1.0)  # dilated by one pixel all round
    assert full.sum() == 15
    half = ink_hedge.thicken(glyph, 0.5)
    assert half.sum() == pytest.approx((3 + 15) / 2)  # halfway between the two
    assert half[0, 4, 4] == 1.0  # the stroke itself stays full
    thick = np.zeros((1, 9, 9), np.float32)
    thick[0, 2:7, 3:6] = 1.0
    thinned = ink_hedge.thicken(thick, -1.0)
    np.testing.assert_array_equal(thinned[0], glyph[0])  # erosion undoes the dilation here
    assert ink_hedge.thicken(thick, -0.5).sum() == pytest.approx((15 + 3) / 2)


def test_geometry_fit_recovers_a_known_rise_and_slant() -> None:
    font = fonts.open_font(fonts.CONTENT)
    chars = "永明国水东"
    content = torch.from_numpy(np.stack([glyphs.normalize(font.raw(c), 64) for c in chars]))
    sheared = geometry.shear(content, 0.15, -0.2)
    rise, slant, score = geometry.fit(content, sheared)
    assert (rise, slant) == (0.15, -0.2)
    assert geometry.fit(content, content)[:2] == (0.0, 0.0)
    assert score > geometry.soft_iou(content, sheared)  # the shear found explains the change
    # rise > 0 lifts the right-hand side: a horizontal bar's right end moves up
    bar = torch.zeros(1, 64, 64)
    bar[0, 31:33, 8:56] = 1.0
    lifted = geometry.shear(bar, 0.2, 0.0)[0]

    def row(cols: slice) -> float:  # the bar's mean row over those columns
        ink = lifted[:, cols].sum(1)
        return float((ink * torch.arange(64)).sum() / ink.sum())

    assert row(slice(48, 56)) < 31 < row(slice(8, 16))


def test_proxy_varies_only_the_named_options_and_scores_per_font() -> None:
    """training.evaluate.proxy: a variant is the default configuration with the options it
    names; its scores are the headline cell's over the draws, and each held-out font's."""
    base = TrainConfig(steps=5, width=16, bf16=False)
    assert proxy.variant("base", base) is base
    mixed = proxy.variant("blend=0.3,restyle.p=0.75,steps=7", base)
    assert (mixed.blend, mixed.steps, mixed.width) == (0.3, 7, 16)
    assert mixed.restyle == augment.Restyle(p=0.75)
    assert base.restyle == augment.Restyle()  # base untouched
    assert base.blend == 0.0
    for bad in ("blend", "blend=x", "nosuch=1", "restyle.nosuch=1", "restyle.p=2", "weights=1"):
        with pytest.raises(SystemExit):
            proxy.variant(bad, base)
    # three training fonts and two held-out ones, 24 characters of which the last 8 held out
    bank = _noise_bank(n_fonts=5, n_chars=24)
    bank = replace(bank, sides=["train"] * 3 + ["heldout"] * 2, n_train_chars=16)
    bank.have[4, 20:] = False  # the second held-out font lacks four held-out characters
    torch.manual_seed(0)
    model = new_model(bank, base)
    scores = proxy.score(model, bank, draws=2, seen=True)
    assert set(scores) == {"headline", "f3", "f4", "seen fonts"}
    glyphs = {"f3": 8, "f4": 4}  # the headline weighs glyphs equally
    mean = sum(scores[f]["l1"] * n for f, n in glyphs.items()) / 12
    assert scores["headline"]["l1"] == pytest.approx(mean, abs=2e-4)
    assert all(0 < m["l1"] < 1 for m in scores.values())
    # --seeds: each figure's mean ± standard deviation over the runs
    other = {name: {k: v + 0.02 for k, v in m.items()} for name, m in scores.items()}
    summary = proxy.over_seeds([scores, other])
    assert set(summary) == set(scores)
    l1 = scores["headline"]["l1"]
    assert summary["headline"]["l1"] == f"{l1 + 0.01:.4f} ± 0.0100"


def test_seen_cell_weighs_each_group_once() -> None:
    # three training fonts: a and b near-duplicates (one group), c alone; the content font
    size, chars = 16, ["一", "二", "三", "四"]
    bank = banklib.GlyphBank(
        fonts=["a", "b", "c", fonts.CONTENT],
        sides=["train"] * 4,
        groups=["ab", "ab", "c", "content"],
        chars=chars,
        n_train_chars=2,
        glyphs=np.zeros((4, 4, size, size), np.uint8),
        have=np.ones((4, 4), bool),
        content=np.zeros((4, 1, size, size), np.uint8),
        struct=np.zeros((4, 3), np.float32),
    )
    assert evaluate.seen_fonts(bank) == [0, 1, 2]
    written = np.array([0, 0, 0, 1, 2])  # font a wrote three glyphs, b one, c one
    w = evaluate.group_weights(bank, written)
    assert w.sum() == pytest.approx(1.0)
    assert w[written == 2].sum() == pytest.approx(0.5)  # c alone weighs as much as a and b
    assert w[written == 0].sum() == pytest.approx(w[written == 1].sum())
    # c perfect, a and b all wrong: glyph-weighted L1 0.8, group-weighted 0.5
    truth = np.zeros((5, size, size), np.float32)
    pred = np.where(written[:, None, None] == 2, 0.0, 1.0) * np.ones_like(truth)
    assert evaluate.metrics(pred, truth)["l1"] == pytest.approx(0.8)
    assert evaluate.metrics(pred, truth, w)["l1"] == pytest.approx(0.5)


def test_shipped_card_reports_the_grid_and_targets() -> None:
    directory = Path(__file__).resolve().parents[2] / "models" / "glyph-style" / "1"
    card = read_card(directory)
    # the command ends in the job, whose arguments describe the configuration the card reports
    # (the commands before it trained the checkpoint elsewhere: training.style.portable)
    words = shlex.split(card.command.split(" && ")[-1])
    assert words[:2] == ["make", "train-style"]
    argv = words[2].removeprefix("ARGS=").split() if len(words) > 2 else []
    config, recorded = asdict(job.cycles_of(job.parse(argv))[0]), card.metrics["training"]["config"]
    # options added after the card was written are at their defaults (the run had none)
    newer = set(config) - set(recorded)
    assert all(config[option] == getattr(TrainConfig(), option) for option in newer)
    # and so are the restyle's (Restyle.warp came after the shipped card)
    restyle, kept = config["restyle"], recorded["restyle"]
    assert all(restyle[o] == getattr(augment.Restyle(), o) for o in set(restyle) - set(kept))
    config["restyle"] = {o: v for o, v in restyle.items() if o in kept}
    assert {option: config[option] for option in recorded} == recorded
    grid = card.metrics["grid"]
    for cell in ("unseen_fonts_unseen_chars", "seen_fonts_unseen_chars", "unseen_fonts_seen_chars"):
        # k = 16 since issue 52, item 4 (make eval-style)
        assert set(grid[cell]) == {"k1", "k4", "k8", "k16"}
        assert 0.0 < grid[cell]["k16"]["model"]["l1"] < grid[cell]["k16"]["content_copy"]["l1"]
    # beside the raw grid, the rendered layer over four reference draws (make eval-style)
    layer = card.metrics["rendered"]
    assert layer["protocol"]["draws"] >= 4
    assert set(layer["unseen_fonts_unseen_chars"]) == {"k1", "k4", "k8", "k16"}
    headline = layer["unseen_fonts_unseen_chars"]["k4"]
    assert set(headline["per_font"]) == set(card.data["heldout_fonts"])
    assert len(headline["mean_over_fonts"]["hog_kid"]["rendered"]["draws"]) >= 4
    assert "k4" in layer["seen_fonts_unseen_chars"]
    assert {"hog_kid_over_floor", "k16_better_than_k4_l1"} <= set(layer["targets"])
    assert len(card.data["heldout_fonts"]) == 5
    assert card.data["characters"]["heldout"] >= 400
    assert len(card.signature.chars) >= 6763
    for path in directory.iterdir():
        assert path.stat().st_size < 25 * 1024 * 1024


def test_restyle_slants_narrows_fills_and_weighs_in_the_served_frame() -> None:
    font = fonts.open_font(fonts.CONTENT)
    x = torch.from_numpy(np.stack([glyphs.normalize(font.raw(c), 64) for c in "永国书"]))[None]

    def box(g: torch.Tensor) -> tuple[int, int, float, float]:
        rows = np.flatnonzero(g.numpy().max(1) > 0.2)
        cols = np.flatnonzero(g.numpy().max(0) > 0.2)
        return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1, rows.mean(), cols.mean()

    def lean(g: torch.Tensor) -> float:
        """Mean ink column of the top third minus that of the bottom third."""
        cols = torch.arange(64, dtype=torch.float32)
        top, bottom = g[:21], g[-21:]
        return float(
            (top.sum(0) * cols).sum() / top.sum() - (bottom.sum(0) * cols).sum() / bottom.sum()
        )

    zero = torch.zeros(1)
    assert float((augment._affine(x, zero, zero) - x).abs().mean()) < 0.03  # resampling only
    right = augment._affine(x, torch.tensor([0.3]), zero)[0]
    narrow = augment._affine(x, zero, torch.tensor([-0.25]))[0]
    for i in range(3):
        assert lean(right[i]) > lean(x[0, i]) + 4  # the top moved right of the bottom
        for g in (right[i], narrow[i]):
            h, w, r, c = box(g)
            assert abs(max(h, w) - glyphs.EM_RATIO * 64) <= 2  # refitted like glyphs.fit
            assert abs(r - 31.5) < 6
            assert abs(c - 31.5) < 6
        assert box(narrow[i])[1] < box(x[0, i])[1] * 0.85  # narrower, same height
    # fill pulls each ink box towards a square: 兵 and 国 only slightly, 书's narrow box most
    square = augment._affine(x, zero, zero, torch.tensor([1.0]))[0]
    for i in range(3):
        h, w, _, _ = box(square[i])
        assert abs(max(h, w) - glyphs.EM_RATIO * 64) <= 2
        h0, w0, _, _ = box(x[0, i])
        assert abs(h - w) <= max(abs(h0 - w0) // 2, 2)
    # contrast: verticals gain ink against horizontals (川's strokes are vertical, 一 horizontal)
    lines = torch.from_numpy(np.stack([glyphs.normalize(font.raw(c), 64) for c in "川一"]))[None]
    up = augment._contrast(lines, torch.tensor([0.6]))[0]
    down = augment._contrast(lines, torch.tensor([-0.6]))[0]
    assert float(up[0].sum()) > float(lines[0, 0].sum()) > float(down[0].sum())
    assert float(up[1].sum()) < float(lines[0, 1].sum()) < float(down[1].sum())
    heavy = augment.stroke_weight(x, torch.tensor([0.6]))
    light = augment.stroke_weight(x, torch.tensor([-0.6]))
    assert float(light.sum()) < float(x.sum()) < float(heavy.sum())

    batch = x.repeat(64, 1, 1, 1)
    out, params = augment.restyle(batch, augment.Restyle(), torch.Generator().manual_seed(3))
    again, _ = augment.restyle(batch, augment.Restyle(), torch.Generator().manual_seed(3))
    assert torch.equal(out, again)  # seeded
    kept = params.abs().sum(1) == 0  # the same episodes restyle: `p` draws first
    assert 16 < int(kept.sum()) < 48  # about half the episodes restyled
    assert torch.equal(out[kept], batch[kept])  # the rest exactly as the bank holds them
    assert bool(((out[~kept] - batch[~kept]).abs().amax((1, 2, 3)) > 0.1).all())
    # box fill and stroke contrast are off by default; turned on, they draw after the others,
    # so the slant, width and weight of each episode stay the ones drawn without them
    assert not bool(params[:, 3:].any())
    cfg = augment.Restyle(fill=1.0, contrast=0.6)
    _, both = augment.restyle(batch, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(both[:, :3], params[:, :3])
    assert bool((both[~kept, 3] > 0).all())
    assert bool((both[~kept, 3] <= 1.0).all())
    assert bool((both[~kept, 4].abs() <= 0.6).all())
    assert bool((both[~kept, 4] != 0).all())


def test_restyle_warp_moves_an_episode_alike_and_is_off_by_default() -> None:
    font = fonts.open_font(fonts.CONTENT)
    x = torch.from_numpy(np.stack([glyphs.normalize(font.raw(c), 64) for c in "永国"]))[None]
    batch = torch.cat([x, x], 1).repeat(16, 1, 1, 1)  # each episode draws 永国永国
    _, params = augment.restyle(batch, augment.Restyle(), torch.Generator().manual_seed(5))
    cfg = augment.Restyle(slant=0.0, width=0.0, weight=0.0, warp=0.1)
    warped, _ = augment.restyle(batch, cfg, torch.Generator().manual_seed(5))
    again, _ = augment.restyle(batch, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(warped, again)  # seeded
    kept = params.abs().sum(1) == 0  # the same episodes restyle: `p` draws first
    assert torch.equal(warped[kept], batch[kept])  # episodes left alone stay byte for byte
    moved = (warped[~kept] - batch[~kept]).abs().mean((2, 3))
    assert bool((moved.amax(1) > 0.005).all())  # every restyled episode moved
    # one field per episode: the same character moves the same way in both of its places
    assert torch.allclose(warped[~kept, 0], warped[~kept, 2], atol=1e-6)
    assert torch.allclose(warped[~kept, 1], warped[~kept, 3], atol=1e-6)
    # and different episodes draw different fields
    assert float((warped[~kept][0, 0] - warped[~kept][1, 0]).abs().mean()) > 1e-3
    ink = warped[~kept].sum((2, 3)) / batch[~kept].sum((2, 3))
    assert bool(((ink > 0.8) & (ink < 1.25)).all())  # moved ink, neither added nor dropped


def test_restyle_pressure_swells_and_thins_an_episode_alike_and_is_off_by_default() -> None:
    font = fonts.open_font(fonts.CONTENT)
    x = torch.from_numpy(np.stack([glyphs.normalize(font.raw(c), 64) for c in "永国"]))[None]
    batch = torch.cat([x, x], 1).repeat(16, 1, 1, 1)  # each episode draws 永国永国
    off = augment.Restyle(slant=0.0, width=0.0, weight=0.0)
    _, params = augment.restyle(batch, augment.Restyle(), torch.Generator().manual_seed(5))
    plain, _ = augment.restyle(batch, off, torch.Generator().manual_seed(5))
    cfg = replace(off, pressure=0.8)
    pressed, _ = augment.restyle(batch, cfg, torch.Generator().manual_seed(5))
    again, _ = augment.restyle(batch, cfg, torch.Generator().manual_seed(5))
    assert torch.equal(pressed, again)  # seeded
    kept = params.abs().sum(1) == 0  # the same episodes restyle: `p` draws first
    assert 0 < int(kept.sum()) < len(kept)
    # the field is drawn after the uniform restyle's draws, which it leaves as they were
    with_field = augment.Restyle(pressure=0.8)
    _, drawn = augment.restyle(batch, with_field, torch.Generator().manual_seed(5))
    assert torch.equal(drawn, params)
    assert torch.equal(pressed[kept], batch[kept])  # episodes left alone stay byte for byte
    diff = pressed[~kept] - plain[~kept]
    assert bool((diff.abs().mean((2, 3)).amax(1) > 1e-3).all())  # every restyled episode moved
    # ink both added and taken within one glyph somewhere: the weight varies across the square
    assert bool(((diff > 0.05).flatten(2).any(2) & (diff < -0.05).flatten(2).any(2)).any())
    # ink moves only at stroke edges: no new ink far from a stroke, none lost deep inside one
    far = torch.nn.functional.max_pool2d(plain[~kept], 5, 1, 2) < 0.05
    assert float(pressed[~kept][far].abs().max()) == 0.0
    # one field per episode: the same character swells alike in both of its places
    assert torch.allclose(pressed[~kept, 0], pressed[~kept, 2], atol=1e-6)
    assert torch.allclose(pressed[~kept, 1], pressed[~kept, 3], atol=1e-6)
    assert float((diff[0, 0] - diff[1, 0]).abs().mean()) > 1e-4  # episodes draw their own


def test_restyle_options_at_their_defaults_keep_the_checkpoint_key_they_predate() -> None:
    bank = _noise_bank(n_fonts=2, n_chars=2)
    key = job.checkpoint_key(TrainConfig(), 64, bank, ["a"], [])
    # the default configuration's key as the job computed it at 4990a29, before Restyle.warp
    # and Restyle.pressure existed: the shipped card's checkpoint names a run under such a key
    assert key == "0ddc54caa5d901a6"
    for option in ("warp", "pressure"):
        other = replace(TrainConfig(), restyle=replace(augment.Restyle(), **{option: 0.1}))
        assert job.checkpoint_key(other, 64, bank, ["a"], []) != key
    assert job.checkpoint_key(replace(TrainConfig(), restyle=None), 64, bank, ["a"], []) != key
