"""The one error shape of shared/API.md, raised as typed errors and rendered in
one place: JSON under /api, the error page elsewhere."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class UnknownModel(ApiError):
    status, code = 404, "unknown_model"

    def __init__(self, message: str, *, model_id: str = "", suggestions: list[tuple[str, str]] | None = None,
                 uploaded: bool = False) -> None:
        super().__init__(message)
        self.model_id = model_id
        self.uploaded = uploaded  # an id of a user's own network that is not (or no longer) stored
        self.suggestions = suggestions or []  # (id, name) of the models the reader probably meant


class NotFound(ApiError):
    status, code = 404, "not_found"


class NotMeasured(ApiError):
    status, code = 404, "not_measured"


class InvalidParameter(ApiError):
    status, code = 422, "invalid_parameter"


class InvalidImage(ApiError):
    status, code = 400, "invalid_image"


class UnsupportedImage(ApiError):
    status, code = 415, "invalid_image"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class InvalidModelFile(ApiError):
    status, code = 400, "invalid_model_file"


class UnsupportedModel(ApiError):
    status, code = 422, "unsupported_model"


class InvalidSequential(ApiError):
    status, code = 400, "invalid_sequential"


class WeightsUnavailable(ApiError):
    status, code = 409, "weights_unavailable"


class Conflict(ApiError):
    status, code = 409, "conflict"


class LayoutUnavailable(ApiError):
    """Graphviz is missing or gave up: the graph's JSON still answers."""
    status, code = 503, "layout_unavailable"


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


class AnalysisCrashed(ApiError):
    """The process working on a request's analysis died, twice (app/analysis_pool.py)."""
    status, code = 500, "analysis_crashed"


class Busy(ApiError):
    status, code = 503, "busy"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or request.url.path == "/openapi.json"


# What a person reads as the error page's heading: no status numbers, no API words.
_HEADINGS = {"unknown_model": "Model not found", "not_found": "Page not found",
             "invalid_parameter": "That value doesn't work here", "method_not_allowed": "This page can't do that",
             "weights_unavailable": "No weights for this model here", "busy": "Busy right now",
             "internal_error": "Something went wrong on our side"}


def _same_site_referer(request: Request) -> str | None:
    """The page the reader came from, when it is one of ours: the error page's way back."""
    referer = request.headers.get("referer", "")
    base = str(request.base_url)
    return "/" + referer.removeprefix(base) if referer.startswith(base) and referer != str(request.url) else None


def _render(request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None,
            exc: Exception | None = None) -> Response:
    if _wants_json(request):
        return JSONResponse(error_body(code, message), status_code=status, headers=headers)
    if isinstance(exc, UnknownModel) and not exc.uploaded:  # the page names it plainly; the JSON keeps the hint
        message = f"There is no model called “{exc.model_id}” in the zoo."
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", {"status": status, "code": code, "message": message,
                                "heading": _HEADINGS.get(code, "Something went wrong"),
                                "suggestions": getattr(exc, "suggestions", []), "back": _same_site_referer(request)},
        status_code=status, headers=headers,
    )


def _parameter_descriptions(dependant) -> dict[str, str]:
    """Query and path parameter name -> its description, sub-dependencies included."""
    if dependant is None:
        return {}
    described = {param.alias: param.field_info.description for param in dependant.query_params + dependant.path_params
                 if param.field_info.description}
    for sub in dependant.dependencies:
        described.update(_parameter_descriptions(sub))
    return described


def _validation_message(exc: RequestValidationError, request: Request) -> str:
    """Pydantic's messages, except that a parameter failing its pattern is told
    what the parameter takes (its documented description), not the regex."""
    described = _parameter_descriptions(getattr(request.scope.get("route"), "dependant", None))
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
        message = err.get("msg", "invalid")
        if err.get("type") == "string_pattern_mismatch" and where in described:
            message = f"expected {described[where]}, got {str(err.get('input'))[:60]!r}"
        parts.append(f"{where}: {message}" if where else message)
    return "Invalid parameter: " + "; ".join(parts) + "."


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request, fallback: str | None) -> str | None:
    """Every method some route at this path takes: Starlette's 405 names only
    the first route's, though a path may have a GET route and a POST route."""
    routes = [route for route in request.app.router.routes if not isinstance(route, Mount)]
    allowed = [method for method in _METHODS
               if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)]
    return ", ".join(allowed) if allowed else fallback


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _render(request, exc.status, exc.code, exc.message, exc.headers, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return _render(request, 422, "invalid_parameter", _validation_message(exc, request))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: f"Nothing at {request.url.path}.", 405: "Method not allowed here."}.get(
            exc.status_code, str(exc.detail))
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            allow = _allowed_methods(request, (headers or {}).get("Allow"))
            headers = {**(headers or {}), **({"Allow": allow} if allow else {})}
        return _render(request, exc.status_code, code, message, headers)

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        """The client left mid-upload: nobody reads an answer, and it is no server error."""
        return Response(status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        request.app.state.logger.exception("Unhandled error on %s", request.url.path)
        return _render(request, 500, "internal_error", "Something went wrong on the server; the error was logged.")
