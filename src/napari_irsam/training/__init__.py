"""Training: losses, augmentation and the resumable training loop (torch/numpy only)."""
