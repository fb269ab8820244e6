"""Turning a run into edge artifacts (TFLite, ONNX) with a model card, proven against the Keras model."""
