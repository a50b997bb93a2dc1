"""Generative models on scikit-learn's bundled digits: a Bernoulli VAE (SGVB and IWAE-5),
a label-conditional VAE and a RealNVP flow, each exported as seeded ONNX samplers with a card.

Run `python -m training.generative --out models --docs docs/models` (see `__main__`)."""
