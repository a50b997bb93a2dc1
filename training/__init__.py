"""Offline training jobs: fit with PyTorch, export to ONNX (or TorchScript) with a card."""
