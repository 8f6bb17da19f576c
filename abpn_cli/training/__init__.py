"""Training: synthetic defects, datasets, losses, trainer, metrics and evaluation."""
