"""The `predictive` kind: rows in, S posterior draws out, summarised as the posterior predictive."""
