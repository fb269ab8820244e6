"""How the shipped models hold up on handwriting unlike the training scans (issue 18's benchmark)."""
