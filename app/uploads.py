"""Reading a multipart upload into memory, bounded while it streams.

Starlette's form parser reads the whole body first and spools files over
1 MB to temporary files; this one feeds python-multipart chunk by chunk from
the request stream, keeps the parts in memory (never on disk, never under a
name the client chose) and stops with 413 as soon as the file passes the
limit, or at once when Content-Length already says it will. Each field may come
once: of two files, or two values of one field, which one counts would be a guess.
A body that stops arriving for CONVZOO_UPLOAD_IDLE_TIMEOUT_S is answered 408 (a stalled
or hostile client holds no connection and no upload buffer for longer); the
fields belong in the body, so an address with a query is refused.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from app.errors import InvalidParameter, RequestTimeout, TooLarge
from app.templating import upload_limit

FIELD_LIMIT = 1024  # bytes of a text field (a model id, a number)
MAX_PARTS = 8
FORM_OVERHEAD = 64 * 1024  # boundaries and part headers around the file


@dataclass
class Upload:
    file: bytes | None = None
    filename: str | None = None  # as the client sent it: a label at most, never a path to open
    fields: dict[str, str] = field(default_factory=dict)


def _form_fields(file_field: str, text_fields: tuple[str, ...]) -> str:
    return ", ".join(repr(name) for name in (file_field, *text_fields))


class _Collector:
    """python-multipart callbacks that gather one file part and short text fields."""

    def __init__(self, file_field: str, text_fields: tuple[str, ...], max_file_bytes: int) -> None:
        self.file_field = file_field
        self.text_fields = text_fields
        self.max_file_bytes = max_file_bytes
        self.upload = Upload()
        self.parts = 0
        self.ended = False  # the closing boundary came
        self._seen: set[str] = set()
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidParameter(f"Too many form fields; send at most {MAX_PARTS}.")
        self._disposition, self._data = b"", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        if len(self._header_value) > FIELD_LIMIT:
            raise InvalidParameter("A multipart part header is too long.")

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        self._is_file = self._name == self.file_field
        if self._is_file and b"filename" in options:
            self.upload.filename = options[b"filename"].decode("utf-8", "replace")[:FIELD_LIMIT]
        if not self._is_file and self._name not in self.text_fields:
            raise InvalidParameter(f"Unknown form field {self._name[:40]!r}; this form takes "
                                   f"{_form_fields(self.file_field, self.text_fields)}.")
        if self._name in self._seen:  # which one counts would be a guess
            raise InvalidParameter(f"The form has more than one field named {self._name[:40]!r}; send it once.")
        self._seen.add(self._name)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._is_file and len(self._data) > self.max_file_bytes:
            raise TooLarge(f"The file is over the upload limit of {upload_limit(self.max_file_bytes)}.")
        if not self._is_file and len(self._data) > FIELD_LIMIT:
            raise InvalidParameter(f"The form field {self._name!r} is too long.")

    def on_part_end(self) -> None:
        if self._is_file:
            self.upload.file = bytes(self._data)
        else:
            self.upload.fields[self._name] = self._data.decode("utf-8", "replace").strip()

    def on_end(self) -> None:
        self.ended = True

    def callbacks(self) -> dict:
        return {name: getattr(self, name) for name in (
            "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
            "on_headers_finished", "on_part_data", "on_part_end", "on_end")}


async def read_upload(request: Request, max_file_bytes: int, file_field: str = "file",
                      text_fields: tuple[str, ...] = ()) -> Upload:
    idle_timeout_s = request.app.state.settings.upload_idle_timeout_s
    if request.query_params:
        raise InvalidParameter(f"This form takes its fields ({_form_fields(file_field, text_fields)}) in the "
                               f"multipart body, not in the address "
                               f"(got {', '.join(dict.fromkeys(request.query_params))[:80]}).")
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidParameter(f"Send the image as multipart/form-data in a field named {file_field!r}.")
    max_body = max_file_bytes + FORM_OVERHEAD
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_body:
        raise TooLarge(f"The upload is {int(declared):,} bytes, over the upload limit of {upload_limit(max_file_bytes)}.")
    collector = _Collector(file_field, text_fields, max_file_bytes)
    parser = MultipartParser(params[b"boundary"], collector.callbacks())
    received = 0
    chunks = request.stream()
    try:
        while True:
            try:
                async with asyncio.timeout(idle_timeout_s):  # per chunk: a slow link is no stall
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise RequestTimeout(f"The upload stalled: nothing arrived for {idle_timeout_s:g} s "
                                     f"({received:,} bytes came); send it again.") from None
            received += len(chunk)
            if received > max_body:
                raise TooLarge(f"The upload is over the upload limit of {upload_limit(max_file_bytes)}.")
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidParameter(f"The multipart form is malformed ({exc}).") from None
    if not collector.ended:
        raise InvalidParameter(f"The form ended before its closing boundary, after {received:,} bytes: the upload "
                               "was cut short, or its Content-Length is wrong.")
    if collector.upload.file is None:
        raise InvalidParameter(f"No file in the form: send the image in a field named {file_field!r}.")
    return collector.upload
