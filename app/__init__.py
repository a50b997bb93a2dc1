"""hanmo: serving for generative and Bayesian models."""

__version__ = "0.1.0"
