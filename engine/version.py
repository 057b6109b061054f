"""The version of looks (in its own module: the client's User-Agent needs it too)."""

__version__ = "0.1.0"
