"""User-facing errors: one line, naming the culprit; the CLI prints them without a traceback."""


class EdgeflowError(Exception):
    """An error caused by the user's input (file, field, card, port); printed as one line."""


class DataError(EdgeflowError):
    """Bad EEG input: unreadable file, missing channels, too short, non-finite samples."""


class CardError(EdgeflowError):
    """Bad model card or checkpoint that does not fit the card."""


def brief(text: str, limit: int = 160) -> str:
    """A library's error text in one line for our messages: its first non-empty line, whole when it has at most
    `limit` characters, else cut at the last word boundary before the limit and marked with '...'.

    >>> brief("Weights only load failed. In PyTorch 2.6, we changed\\nmore", 40)
    'Weights only load failed. In PyTorch ...'
    >>> brief("  \\ninvalid load key, 'x'.\\nsecond line")
    "invalid load key, 'x'."
    """
    line = next((" ".join(ln.split()) for ln in text.splitlines() if ln.strip()), "")
    if len(line) <= limit:
        return line
    cut = line[:limit - 3].rsplit(" ", 1)[0] if " " in line[:limit - 3] else line[:limit - 3]
    return cut.rstrip(" ,;:") + " ..."
