"""hanmo: serving for generative and Bayesian models."""

__version__ = "0.2.0"
