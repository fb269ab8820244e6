"""Measuring artifacts: runtimes behind one interface, latency, accuracy, device runners."""
