"""The detector: consumes transactions, scores micro-batches, produces scores exactly once.

May import: the rest of pipeline, ml, contracts and the foundations.
"""

from fraudstream.pipeline.detector.changelog import read_changelog
from fraudstream.pipeline.detector.loop import Detector

__all__ = ["Detector", "read_changelog"]
