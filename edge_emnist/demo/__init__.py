"""`edge-emnist demo`: draw a character in the browser; the exported ONNX model reads it, on the user's device."""
