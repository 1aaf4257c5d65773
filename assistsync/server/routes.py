"""The v1 operations: one small function per endpoint, and the route table that lists them.

Each handler validates its input (:mod:`.schemas`), calls one :class:`~.store.Store` method and
wraps the result. Threads, messages and runs will add their handlers and table rows here (or in
sibling modules whose routes are concatenated into :data:`ROUTES`).
"""

from __future__ import annotations

from assistsync.server.routing import Request, Response, Route
from assistsync.server.schemas import (
    CreateAssistantFileRequest,
    assistant_create_fields,
    assistant_modify_fields,
    files_query,
    page_query,
    single_params,
    validate,
)
from assistsync.server.uploads import receive_upload


def _plain(request: Request) -> None:
    """Operations without query parameters reject any, as unknown fields are rejected."""
    single_params(request.query, ())


# -- assistants ----------------------------------------------------------------------------------


def list_assistants(request: Request) -> Response:
    return Response(request.store.list_assistants(page_query(request.query)).envelope())


def create_assistant(request: Request) -> Response:
    _plain(request)
    fields, file_ids = assistant_create_fields(request.json())
    return Response(request.store.create_assistant(fields, file_ids))


def get_assistant(request: Request) -> Response:
    _plain(request)
    return Response(request.store.get_assistant(request.params["assistant_id"]))


def modify_assistant(request: Request) -> Response:
    _plain(request)
    assistant_id = request.params["assistant_id"]
    # A missing assistant is a 404 even when the body is also wrong: check it first.
    request.store.get_assistant(assistant_id)
    changes, file_ids = assistant_modify_fields(request.json())
    return Response(request.store.modify_assistant(assistant_id, changes, file_ids))


def delete_assistant(request: Request) -> Response:
    _plain(request)
    assistant_id = request.params["assistant_id"]
    request.store.delete_assistant(assistant_id)
    return Response({"id": assistant_id, "object": "assistant.deleted", "deleted": True})


# -- assistant files -----------------------------------------------------------------------------


def list_assistant_files(request: Request) -> Response:
    query = page_query(request.query)
    page = request.store.list_assistant_files(request.params["assistant_id"], query)
    return Response(page.envelope())


def attach_file(request: Request) -> Response:
    _plain(request)
    assistant_id = request.params["assistant_id"]
    request.store.get_assistant(assistant_id)
    body = validate(CreateAssistantFileRequest, request.json())
    return Response(request.store.attach_file(assistant_id, body.file_id))


def get_assistant_file(request: Request) -> Response:
    _plain(request)
    found = request.store.get_assistant_file(
        request.params["assistant_id"], request.params["file_id"]
    )
    return Response(found)


def detach_file(request: Request) -> Response:
    _plain(request)
    file_id = request.params["file_id"]
    request.store.detach_file(request.params["assistant_id"], file_id)
    return Response({"id": file_id, "object": "assistant.file.deleted", "deleted": True})


# -- files ---------------------------------------------------------------------------------------


def list_files(request: Request) -> Response:
    return Response(
        {"object": "list", "data": request.store.list_files(files_query(request.query))}
    )


def upload_file(request: Request) -> Response:
    _plain(request)
    upload = receive_upload(request)
    try:
        created = request.store.create_file(
            upload.path, upload.filename, upload.purpose, upload.size
        )
    except BaseException:
        request.store.discard_upload(upload.path)
        raise
    return Response(created)


def get_file(request: Request) -> Response:
    _plain(request)
    return Response(request.store.get_file(request.params["file_id"]))


def delete_file(request: Request) -> Response:
    _plain(request)
    file_id = request.params["file_id"]
    request.store.delete_file(file_id)
    return Response({"id": file_id, "object": "file", "deleted": True})


def file_content(request: Request) -> Response:
    _plain(request)
    stream, length = request.store.open_content(request.params["file_id"])
    return Response(stream=stream, length=length, content_type="application/octet-stream")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/assistants", list_assistants, beta=True),
    Route("POST", "/v1/assistants", create_assistant, beta=True),
    Route("GET", "/v1/assistants/{assistant_id}", get_assistant, beta=True),
    Route("POST", "/v1/assistants/{assistant_id}", modify_assistant, beta=True),
    Route("DELETE", "/v1/assistants/{assistant_id}", delete_assistant, beta=True),
    Route("GET", "/v1/assistants/{assistant_id}/files", list_assistant_files, beta=True),
    Route("POST", "/v1/assistants/{assistant_id}/files", attach_file, beta=True),
    Route("GET", "/v1/assistants/{assistant_id}/files/{file_id}", get_assistant_file, beta=True),
    Route("DELETE", "/v1/assistants/{assistant_id}/files/{file_id}", detach_file, beta=True),
    Route("GET", "/v1/files", list_files),
    Route("POST", "/v1/files", upload_file),
    Route("GET", "/v1/files/{file_id}", get_file),
    Route("DELETE", "/v1/files/{file_id}", delete_file),
    Route("GET", "/v1/files/{file_id}/content", file_content),
)
"""Every operation the server implements, as (method, path template, handler)."""
