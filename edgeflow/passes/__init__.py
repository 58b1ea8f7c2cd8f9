"""Graph -> Graph passes, one per file; pipeline.py holds the ordered list the compiler runs."""

from edgeflow.passes.pipeline import PASSES, run_pipeline

__all__ = ["PASSES", "run_pipeline"]
