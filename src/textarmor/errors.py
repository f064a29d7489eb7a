"""Errors a user can cause. Each message says what was expected, what arrived and how to fix it.

The CLI prints the message of a :class:`TextArmorError` without a traceback and exits with code 2.
Messages name lengths, line numbers and column names, never the user's text itself.
"""
from __future__ import annotations


class TextArmorError(Exception):
    """Base class of every error caused by user input or configuration."""

    exit_code = 2


class DataError(TextArmorError, ValueError):
    """A data file is missing, empty, malformed or lacks a needed column."""


class ModelReferenceError(TextArmorError, ValueError):
    """A model reference resolves to nothing loadable."""


class OutputExistsError(TextArmorError, FileExistsError):
    """An output would overwrite existing results."""


class ParameterError(TextArmorError, ValueError):
    """An argument is outside its allowed range or set."""
