"""The `sampler` kind: seeded noise in, samples out (and optionally a density)."""
