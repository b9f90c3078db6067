"""Model frontends: ONNX files and bundled checkpoints, read into the compiler IR."""
