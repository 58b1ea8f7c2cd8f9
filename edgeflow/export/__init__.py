"""Export: ONNX (QCDQ) with the selective scan as one custom node, and the GPU form."""
