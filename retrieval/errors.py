"""User-facing errors.

Every failure a user can cause or meet (bad file, missing corpus, corrupt index, missing model)
is raised as a ReportQAError whose message is one clear line naming the thing and what is wrong.
The CLI and the bot print that line; anything else is a bug and shows a traceback only with --debug.
"""


class ReportQAError(Exception):
    """Base class: the message is shown to the user as is."""


class InputError(ReportQAError):
    """A question or argument the user gave cannot be used."""


class CorpusError(ReportQAError):
    """A report file or the corpus manifest is missing, unreadable or malformed."""


class IndexStoreError(ReportQAError):
    """The persisted index cannot be read or written."""


class ModelError(ReportQAError):
    """The embedding model cannot be built or loaded."""
