"""Runners: start a simulator, feed it windows, read its outputs and measurements back."""
