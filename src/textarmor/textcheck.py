"""What textarmor accepts as text, checked where text comes in: files, request bodies, the Python API.

The rule is one for every verb and the server: text is Unicode that UTF-8 can carry, without NUL. Files are
read as UTF-8 (a leading byte-order mark is dropped). Nothing is replaced silently; what breaks the rule is
refused with where it is (file and line, request input, or list item) and how to fix it:

- bytes that are not UTF-8 (a Latin-1 or UTF-16 file, a binary file): convert the file to UTF-8;
- a lone surrogate (``"\\ud800"``, legal in JSON, not in UTF-8): no tokenizer or output file can hold it;
- NUL (U+0000): a sign of a UTF-16 or binary file read as UTF-8, and cut short by C tools downstream.

Files are decoded with ``surrogateescape``, so that a line with invalid bytes still arrives, its bad bytes as
U+DC80..U+DCFF, and the error can name its line and column; a decoder error never ends in a traceback.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import IO

ENCODING = "utf-8-sig"  # UTF-8; a leading byte-order mark is dropped
_SURROGATE = re.compile("[\ud800-\udfff]")
FIX_BYTES = "Save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)."


def text_stream(binary: IO[bytes]) -> IO[str]:
    """A text stream over ``binary`` that decodes UTF-8 and keeps invalid bytes as escapes for the checks here
    (universal newlines, untranslated, as the csv module wants)."""
    return io.TextIOWrapper(binary, encoding=ENCODING, errors="surrogateescape", newline="")


def open_text(path) -> IO[str]:
    """:func:`text_stream` over a file."""
    return text_stream(open(path, "rb"))


def invalid_character(text: str) -> tuple[int, str] | None:
    """``(position, description)`` of the first character the rule refuses in ``text``, or ``None``."""
    nul = text.find("\x00")
    if not text.isascii():
        found = _SURROGATE.search(text, 0, nul if nul >= 0 else len(text))
        if found is not None:
            return found.start(), f"a lone surrogate (U+{ord(found.group()):04X})"
    return (nul, "a NUL character (U+0000)") if nul >= 0 else None


def first_invalid(texts: Sequence[str]) -> tuple[int, int, str] | None:
    """``(item, position, description)`` of the first refused character in a list of texts, or ``None``.
    The whole list is checked in C first (ASCII and UTF-8 encodability), so clean lists cost little."""
    joined = "".join(texts)
    if "\x00" not in joined:
        if joined.isascii():
            return None
        try:
            joined.encode("utf-8")
            return None
        except UnicodeEncodeError:
            pass
    for item, text in enumerate(texts):
        found = invalid_character(text)
        if found is not None:
            return item, *found
    return None


def describe_line_problem(line: str) -> str | None:
    """What is wrong with one decoded line of a file (read through :func:`text_stream`), or ``None``: invalid
    bytes (escaped as U+DC80..U+DCFF) or NUL, with the column (counted in characters from 1)."""
    found = invalid_character(line)
    if found is None:
        return None
    position, description = found
    if description.startswith("a lone surrogate"):
        byte = ord(line[position]) - 0xDC00
        hint = " The file looks like UTF-16." if line.startswith(("\udcff\udcfe", "\udcfe\udcff")) else ""
        return f"not valid UTF-8 (byte 0x{byte:02X} at column {position + 1}).{hint} {FIX_BYTES}"
    return (f"{description} at column {position + 1}; text files must be UTF-8 without NUL characters (a file "
            f"full of them is usually UTF-16). {FIX_BYTES}")


def describe_value_problem(text: str) -> str | None:
    """What is wrong with one text value (a JSON string, a CSV field, a request input), or ``None``."""
    found = invalid_character(text)
    if found is None:
        return None
    position, description = found
    return (f"the text has {description} at character {position + 1}, which textarmor does not accept "
            "(text must be valid Unicode without NUL). Remove or replace that character.")


def check_texts(texts: Sequence[str], name: str = "texts") -> None:
    """Raise :class:`~textarmor.errors.ParameterError` naming the first item of ``texts`` that breaks the rule."""
    found = first_invalid(texts)
    if found is not None:
        from textarmor.errors import ParameterError

        item, position, description = found
        raise ParameterError(f"{name}[{item}] has {description} at character {position + 1}; text must be valid "
                             "Unicode without NUL. Remove or replace that character.")
