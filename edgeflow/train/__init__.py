"""Training: masked low-pass reconstruction pre-training, classification fine-tuning, metrics."""
