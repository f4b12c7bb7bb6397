from fraudstream.pipeline.detector.loop import Detector, read_changelog

__all__ = ["Detector", "read_changelog"]
