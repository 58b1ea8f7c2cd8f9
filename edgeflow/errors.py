"""User-facing errors: one line, naming the culprit; the CLI prints them without a traceback."""


class EdgeflowError(Exception):
    """An error caused by the user's input (file, field, card, port); printed as one line."""


class DataError(EdgeflowError):
    """Bad EEG input: unreadable file, missing channels, too short, non-finite samples."""


class CardError(EdgeflowError):
    """Bad model card or checkpoint that does not fit the card."""
