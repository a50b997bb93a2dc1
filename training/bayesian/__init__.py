"""Bayesian predictive models with per-draw outputs: heteroscedastic regression on UCI
Concrete (SGHMC, a deep ensemble, MC dropout with baked masks) and classification on
scikit-learn's digits (SGHMC and an ensemble), evaluated by the UCI protocol / a fixed split
with out-of-distribution inputs, exported as one ONNX graph holding all S draws.

Run `python -m training.bayesian --out models --docs docs/models` (see `__main__`)."""
