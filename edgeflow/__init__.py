"""edgeflow: small EEG models from PyTorch to microcontrollers and edge GPUs."""

__version__ = "0.1.0"
