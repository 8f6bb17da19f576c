"""Errors the engine raises: all mean 'environment problem' (exit code 4) to the CLI."""


class EngineError(Exception):
    """Model missing or unreadable, unsafe model file, or requested device unavailable."""
