"""Integer IR: graph, ONNX frontend, numpy reference (defines the device numerics)."""
