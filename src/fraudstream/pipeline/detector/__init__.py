from fraudstream.pipeline.detector.changelog import read_changelog
from fraudstream.pipeline.detector.loop import Detector

__all__ = ["Detector", "read_changelog"]
