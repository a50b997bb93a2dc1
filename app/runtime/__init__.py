"""Running graphs: ONNX Runtime sessions per device, TorchScript lazily, kind contracts."""
