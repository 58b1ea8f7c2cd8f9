"""Quantization: brevitas QAT, PTQ calibration, and the integer arithmetic the device computes."""
