"""The library's errors as JSON answers with the status each error carries (``http_status``)."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from auptimate_core.errors import AuptimateError


class AuptimateErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, error: Exception) -> HttpResponse | None:
        if isinstance(error, AuptimateError):
            return JsonResponse({"error": type(error).__name__, "detail": str(error)},
                                status=error.http_status)
        return None
