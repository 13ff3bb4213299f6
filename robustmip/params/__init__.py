"""Parameter and quantization robustness (filled in below)."""
