"""Why a file cannot be searched, as values the files endpoint can answer with.

The retrieval package knows nothing of HTTP; each error carries what the hosted API's 400
``invalid_request_error`` carried (``message`` and ``param``), and the endpoint that called
it converts it where it is caught::

    except FileRejected as exc:
        raise bad_request(exc.message, exc.param) from None
"""

from __future__ import annotations


class FileRejected(Exception):
    """A file the retrieval index cannot take; ``message`` is fit to show to an API client.

    ``status`` (400) and ``param`` (``"file"``) are those of the hosted API's answer to the same
    upload, so the endpoint can answer with them as they are.
    """

    status = 400
    param = "file"

    def __init__(self, message: str, *, filename: str, extension: str) -> None:
        super().__init__(message)
        self.message = message
        self.filename = filename
        self.extension = extension


class UnsupportedFileType(FileRejected):
    """No extractor exists for this file: an unknown extension, or unknown content without one.

    The hosted API refused such files at upload (``POST /files`` with purpose ``assistants``),
    so this is raised by :func:`~assistsync.server.retrieval.check_upload` as well.
    """


class NotRetrievable(FileRejected):
    """A known file type that retrieval does not read (images, archives, spreadsheets, slides).

    The hosted API accepted these at upload (code interpreter reads them) and refused them only
    when attached to an assistant whose tools include ``retrieval``; so should the endpoint.
    """


class UnreadableFile(FileRejected):
    """A supported type whose content cannot be read: a corrupt PDF or DOCX, or binary bytes or
    an unsupported encoding in a file whose extension says it is text."""


class TextTooLong(FileRejected):
    """More text than retrieval reads from one file (the hosted API's 2,000,000 tokens)."""
