"""The `autoregressive` kind: a step graph maps partial samples to every position's logits."""
