"""ferryd: a managed file transfer server that keeps working when machines fail."""

__version__ = "0.1.0"
