"""Text extraction: a file's bytes -> the plain text that is chunked, indexed and quoted.

Offsets everywhere in this package are offsets into the string :func:`extract` returns, so a
citation's ``quote`` is always ``extracted.text[start:end]``. The type of a file is decided by
its extension, checked against its content (a ``.pdf`` must start like a PDF, a ``.txt`` must
decode as text); a file without an extension is sniffed. PDF text comes from pypdf, DOCX from
python-docx, HTML from lxml (libxml2's forgiving parser), everything else is read as text.

Text must be UTF-8 or UTF-16 (with a byte-order mark), as the hosted API required; newlines
come out as ``\\n``. Structured formats are rendered as paragraphs separated by a blank line,
the boundary the chunker prefers.
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from assistsync.server.retrieval.errors import (
    NotRetrievable,
    TextTooLong,
    UnreadableFile,
    UnsupportedFileType,
)

Kind = Literal["text", "markdown", "html", "json", "csv", "code", "pdf", "docx"]

_CODE = (
    "c", "h", "cc", "cpp", "cxx", "hpp", "cs", "css", "go", "java", "js", "jsx", "mjs", "ts",
    "tsx", "php", "py", "rb", "rs", "sh", "bash", "swift", "kt", "scala", "sql", "xml", "yaml",
    "yml", "toml", "ini", "cfg", "lua", "pl", "r", "vb", "scss",
)  # fmt: skip
_KINDS: dict[str, Kind] = {
    **dict.fromkeys(("txt", "text", "log", "rst", "tex", "adoc", "org"), "text"),
    **dict.fromkeys(("md", "markdown", "mdx"), "markdown"),
    **dict.fromkeys(("html", "htm", "xhtml"), "html"),
    **dict.fromkeys(("json", "jsonl", "ndjson"), "json"),
    **dict.fromkeys(("csv", "tsv"), "csv"),
    **dict.fromkeys(_CODE, "code"),
    "pdf": "pdf",
    "docx": "docx",
}

HOSTED_UPLOAD_FORMATS = (
    "c", "cpp", "css", "csv", "docx", "gif", "go", "html", "java", "jpeg", "jpg", "js", "json",
    "md", "pdf", "php", "pkl", "png", "pptx", "py", "rb", "tar", "tex", "ts", "txt", "webp",
    "xlsx", "xml", "zip",
)  # fmt: skip
"""Extensions the hosted API accepted for purpose ``assistants`` (its error message lists them)."""

UPLOAD_FORMATS = tuple(sorted(set(HOSTED_UPLOAD_FORMATS) | set(_KINDS) | {"doc"}))
"""Extensions this server accepts at upload: the hosted list plus every one it can read."""

RETRIEVABLE_FORMATS = tuple(sorted(_KINDS))
"""Extensions whose text retrieval extracts."""

MAX_TEXT_CHARS = 8_000_000
"""Text read from one file: the hosted API's 2,000,000 tokens per file, at 4 characters each."""

_PDF_MAGIC = b"%PDF-"
_ZIP_MAGIC = b"PK\x03\x04"
_SNIFF = 8192


@dataclass(frozen=True, slots=True)
class Extracted:
    """The searchable text of one file and the kind of file it was read as."""

    text: str
    kind: Kind


def extension_of(filename: str) -> str:
    """The lower-case extension without its dot (``""`` when there is none)."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem else ""


def _formats(names: tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def check_upload(filename: str) -> None:
    """Refuse, before any byte is read, a file the hosted API refused at upload.

    Raises :class:`UnsupportedFileType` for an extension outside :data:`UPLOAD_FORMATS`; a file
    without an extension passes (its content decides, in :func:`extract`).
    """
    ext = extension_of(filename)
    if ext and ext not in UPLOAD_FORMATS:
        raise UnsupportedFileType(
            f"Invalid extension {ext}. Supported formats: {_formats(UPLOAD_FORMATS)}",
            filename=filename,
            extension=ext,
        )


def is_retrievable(filename: str) -> bool:
    """Whether retrieval reads files with this name's extension (content not considered)."""
    return extension_of(filename) in _KINDS


def not_retrievable_message(extensions: list[str]) -> str:
    """The hosted API's refusal to attach unreadable types to an assistant with retrieval."""
    shown = ", ".join(f".{ext}" if ext else "(none)" for ext in sorted(set(extensions)))
    return (
        f"Files with extensions [{shown}] are not supported for retrieval. Supported formats: "
        f"{_formats(RETRIEVABLE_FORMATS)}"
    )


def extract(filename: str, data: bytes, *, max_chars: int = MAX_TEXT_CHARS) -> Extracted:
    """The searchable text of ``data``, a file uploaded as ``filename``.

    Raises :class:`UnsupportedFileType` (no extractor for it), :class:`NotRetrievable` (a known
    type retrieval does not read), :class:`UnreadableFile` (corrupt or not what its name says)
    or :class:`TextTooLong` (more than ``max_chars`` characters of text).
    Pure: no I/O, safe to call outside any lock, e.g. right after an upload is received.
    """
    ext = extension_of(filename)
    kind = _KINDS.get(ext) if ext else _sniff(filename, data)
    if kind is None:
        if ext in UPLOAD_FORMATS:
            raise NotRetrievable(not_retrievable_message([ext]), filename=filename, extension=ext)
        raise UnsupportedFileType(
            f"Invalid extension {ext}. Supported formats: {_formats(UPLOAD_FORMATS)}",
            filename=filename,
            extension=ext,
        )
    # A UTF-8 character is at most 4 bytes: a text file this large cannot fit, so say so before
    # decoding it.
    size = len(data) // 4 if kind not in ("pdf", "docx") else 0
    text = _EXTRACTORS[kind](filename, data) if size <= max_chars else ""
    size = max(size, len(text))
    if size > max_chars:
        raise TextTooLong(
            f"Invalid file '{filename}': it holds at least {size:,} characters of text, more than "
            f"the {max_chars:,} (about {max_chars // 4:,} tokens) that retrieval reads from one "
            "file. Split it into smaller files.",
            filename=filename,
            extension=ext,
        )
    return Extracted(text, kind)


def _sniff(filename: str, data: bytes) -> Kind:
    if data.startswith(_PDF_MAGIC):
        return "pdf"
    if data.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                if "word/document.xml" in archive.namelist():
                    return "docx"
        except zipfile.BadZipFile:
            pass
    else:
        try:
            _decode(filename, "", data[:_SNIFF], partial=True)
        except UnreadableFile:
            pass
        else:
            return "text"
    raise UnsupportedFileType(
        f"Invalid file '{filename}': it has no extension and its content is not text, PDF or "
        f"DOCX. Supported formats: {_formats(UPLOAD_FORMATS)}",
        filename=filename,
        extension="",
    )


# -- text ---------------------------------------------------------------------------------------

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
# C0 controls other than tab, newline, form feed and carriage return never occur in text.
_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1f]")


def _decode(filename: str, ext: str, data: bytes, *, partial: bool = False) -> str:
    """UTF-8 or BOM-marked UTF-16, newlines as ``\\n``; anything else is :class:`UnreadableFile`.

    ``partial``: ``data`` is a prefix, so a multi-byte character cut at its end is fine.
    """
    encoding, body = "utf-8", data
    for bom, name in _BOMS:
        if data.startswith(bom):
            encoding, body = name, data[len(bom) :]
            break
    try:
        text = body.decode(encoding, errors="strict")
    except UnicodeDecodeError as exc:
        if not (partial and exc.start >= len(body) - 3 and exc.reason == "unexpected end of data"):
            raise UnreadableFile(
                f"Invalid file '{filename}': it is not UTF-8 or UTF-16 text (byte {exc.start} "
                f"cannot be decoded as {encoding}). Save it as UTF-8 and upload it again.",
                filename=filename,
                extension=ext,
            ) from None
        text = body[: exc.start].decode(encoding)
    bad = _BINARY.search(text)
    if bad is not None:
        raise UnreadableFile(
            f"Invalid file '{filename}': it contains binary data (a control character at "
            f"offset {bad.start()}), not text. Upload a text, PDF or DOCX file.",
            filename=filename,
            extension=ext,
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _text(filename: str, data: bytes) -> str:
    return _decode(filename, extension_of(filename), data)


def _json(filename: str, data: bytes) -> str:
    text = _text(filename, data)
    # Minified JSON is one long line; re-indented, the chunker can break between members.
    # Anything that does not parse (JSON Lines, JSON with comments) is searched as it is.
    if text.count("\n") * 200 < len(text):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return json.dumps(value, indent=1, ensure_ascii=False)
    return text


# -- HTML ---------------------------------------------------------------------------------------

_INVISIBLE = frozenset(
    ("head", "script", "style", "noscript", "template", "svg", "math", "iframe", "object")
)
_BLOCKS = frozenset(
    (
        "address", "article", "aside", "blockquote", "body", "caption", "dd", "details", "dialog",
        "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2",
        "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre",
        "section", "summary", "table", "tr", "ul", "html",
    )
)  # fmt: skip
_CELLS = frozenset(("td", "th"))
_SPACES = re.compile(r"[ \t\n\r\f\v]+")


def _html(filename: str, data: bytes) -> str:
    """Visible text: one paragraph per block element, whitespace collapsed outside ``<pre>``."""
    import lxml.etree
    import lxml.html

    # Decoded here as every text file is (libxml2 would read undeclared UTF-8 as Latin-1); bytes
    # that are not UTF-8/16 go to libxml2 as they are, to honour a declared <meta charset>.
    source: str | bytes
    try:
        source = _decode(filename, "html", data)
    except UnreadableFile:
        source = data
    if not source.strip():
        return ""  # libxml2 calls an empty document an error; it is only an empty file
    try:
        try:
            root = lxml.html.document_fromstring(source)
        except ValueError:  # a str with an <?xml encoding=...?> declaration: let libxml2 decode
            root = lxml.html.document_fromstring(data)
    except (lxml.etree.LxmlError, ValueError) as exc:
        raise UnreadableFile(
            f"Invalid file '{filename}': it could not be read as HTML ({exc}).",
            filename=filename,
            extension=extension_of(filename),
        ) from None
    blocks: list[str] = []
    line: list[str] = []
    preformatted = [False]  # whether the current block holds <pre> text (kept as it is)

    def flush() -> None:
        joined = "".join(line)
        line.clear()
        if joined.strip():
            blocks.append(joined.strip("\n") if preformatted[0] else _tidy(joined))
        preformatted[0] = False

    def add(text: str | None, pre: bool) -> None:
        if text:
            line.append(text if pre else _SPACES.sub(" ", text))
            preformatted[0] = preformatted[0] or pre

    def walk(element: Any, pre: bool) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        visible = tag not in _INVISIBLE and element.get("hidden") is None and tag != ""
        if visible:
            inner = pre or tag == "pre"
            if tag in _BLOCKS:
                flush()
            elif tag == "br":
                line.append("\n")
            elif tag in _CELLS and line:
                line.append(" | ")
            add(element.text, inner)
            for child in element:
                walk(child, inner)
            if tag in _BLOCKS:
                flush()
        add(element.tail, pre)  # the tail belongs to the parent, visible even after a script

    walk(root, False)
    flush()
    return "\n\n".join(blocks)


def _tidy(block: str) -> str:
    return "\n".join(part.strip(" ") for part in block.split("\n")).strip()


# -- PDF and DOCX -------------------------------------------------------------------------------


def _unreadable(filename: str, what: str, exc: BaseException) -> UnreadableFile:
    reason = str(exc).strip() or type(exc).__name__
    return UnreadableFile(
        f"Invalid file '{filename}': it could not be read as {what} ({reason}). Check that the "
        f"file opens, or upload its text as a .txt file.",
        filename=filename,
        extension=extension_of(filename),
    )


def _pdf(filename: str, data: bytes) -> str:
    """Each page's text (pypdf), pages separated by a blank line."""
    if not data.lstrip(b"\0\t\n\r ").startswith(_PDF_MAGIC):
        raise _unreadable(filename, "PDF", ValueError("it does not start with %PDF-"))
    import pypdf

    # pypdf logs every recoverable oddity of a damaged file; the outcome is what matters here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ValueError("it is encrypted with a password")
        pages = [page.extract_text() or "" for page in reader.pages]
    # Parsers of untrusted files raise many exception types (pypdf's own, ValueError, KeyError,
    # struct.error, RecursionError...); every one of them means "this upload is unreadable",
    # a 400 for the client rather than a 500.
    except Exception as exc:
        raise _unreadable(filename, "PDF", exc) from None
    texts = (page.replace("\r\n", "\n").replace("\r", "\n").strip() for page in pages)
    return "\n\n".join(text for text in texts if text)


def _docx(filename: str, data: bytes) -> str:
    """Paragraphs and table rows in document order (python-docx), separated by a blank line."""
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
        parts = list(_docx_blocks(document.iter_inner_content()))
    except Exception as exc:  # see _pdf: any failure of the parser is an unreadable upload
        raise _unreadable(filename, "DOCX", exc) from None
    return "\n\n".join(part for part in parts if part)


def _docx_blocks(items: Iterator[Any]) -> Iterator[str]:
    from docx.table import Table

    for item in items:
        if isinstance(item, Table):
            for row in item.rows:
                cells = [cell.text.strip() for cell in row.cells]
                # Merged cells repeat once per grid column; show each once.
                unique = [c for i, c in enumerate(cells) if c and (i == 0 or c != cells[i - 1])]
                yield " | ".join(unique)
        else:
            yield _tidy(item.text.replace("\r", "\n").replace("\t", " ").strip())


_EXTRACTORS: dict[Kind, Callable[[str, bytes], str]] = {
    "text": _text,
    "markdown": _text,
    "code": _text,
    "csv": _text,
    "json": _json,
    "html": _html,
    "pdf": _pdf,
    "docx": _docx,
}
