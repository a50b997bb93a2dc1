"""The `autoencoder` kind: a Bayesian autoencoder's reconstructions with uncertainty."""
