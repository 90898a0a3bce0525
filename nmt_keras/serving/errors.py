"""Errors of the local model server: start-up failures and per-request statuses.

`ServerError` is what a user sees when the server cannot start (bad flags, a model that
does not load); the CLI catches it and prints one line. `RequestError` carries a gRPC
status code and the message the real TensorFlow Serving would return for a bad request;
the gRPC and REST front ends turn it into their own error formats.
"""

from __future__ import annotations

import grpc

from nmt_keras.errors import NmtKerasError

# The real server cuts error messages at this many characters (grpc_status_util.cc).
MAX_ERROR_MESSAGE_CHARS = 1024


class ServerError(NmtKerasError, ValueError):
    """The server cannot start or cannot apply a configuration.

    The message is a single line naming the culprit (a flag, a path, a model version).
    """

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message))


class RequestError(Exception):
    """A request failed with a gRPC status code, as the real server would report it.

    Args:
        code: The gRPC status code, e.g. `grpc.StatusCode.NOT_FOUND`.
        message: The error message (the real server's text where there is one).
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def invalid_argument(message: str) -> RequestError:
    """Returns an INVALID_ARGUMENT `RequestError`."""
    return RequestError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> RequestError:
    """Returns a NOT_FOUND `RequestError`."""
    return RequestError(grpc.StatusCode.NOT_FOUND, message)


def failed_precondition(message: str) -> RequestError:
    """Returns a FAILED_PRECONDITION `RequestError`."""
    return RequestError(grpc.StatusCode.FAILED_PRECONDITION, message)


def truncate_message(message: str) -> str:
    """Cuts a message the way the real server does before sending it over gRPC."""
    if len(message) > MAX_ERROR_MESSAGE_CHARS:
        return message[:MAX_ERROR_MESSAGE_CHARS] + "...TRUNCATED"
    return message


def one_line(message: str) -> str:
    """Collapses whitespace runs (newlines included) into single spaces."""
    return " ".join(str(message).split())


def status_code(error_code: int) -> grpc.StatusCode:
    """The gRPC status code of a TensorFlow error code (the two share their numbering)."""
    for status in grpc.StatusCode:
        if status.value[0] == error_code:
            return status
    return grpc.StatusCode.UNKNOWN
