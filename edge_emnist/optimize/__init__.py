"""Pruning and quantization-aware training (tensorflow-model-optimization), as fine-tuning of a finished run."""
