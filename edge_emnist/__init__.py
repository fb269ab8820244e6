"""edge-emnist: handwritten-character CNNs made edge-ready, with measurements to pick the one to ship."""

__version__ = "0.1.0"
