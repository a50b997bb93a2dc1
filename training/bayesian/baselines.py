"""scikit-learn baselines for the regression protocol, fitted on standardised x and y:
a Gaussian process (constant × ARD RBF + white noise, hyper-parameters by marginal
likelihood) and Bayesian ridge regression. Both return a single Gaussian (S = 1) per point
in the standardised target units, the observation noise included."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel
from sklearn.linear_model import BayesianRidge


def fit_gp(x: np.ndarray, y: np.ndarray, seed: int) -> GaussianProcessRegressor:
    """The GP fitted by marginal likelihood: fitted kernel_ is (c · RBF(ℓ)) + White(σ²)."""
    kernel = ConstantKernel(1.0) * RBF(length_scale=np.ones(x.shape[1])) + WhiteKernel(0.1)
    model = GaussianProcessRegressor(kernel, normalize_y=False, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model


def gp(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, seed: int) -> tuple[np.ndarray, ...]:
    mean, sd = fit_gp(x, y, seed).predict(x_test, return_std=True)
    return mean[None], (sd**2)[None]


def bayesian_ridge(x: np.ndarray, y: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, ...]:
    model = BayesianRidge().fit(x, y)
    mean, sd = model.predict(x_test, return_std=True)
    return mean[None], (sd**2)[None]
