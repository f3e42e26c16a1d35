"""frugal's status codes as Python exceptions; each carries the library's one-line message."""

__all__ = ["Error", "InvalidArgument", "ShapeError", "OutOfMemory", "FileError", "FormatError", "Unsupported",
           "DeviceError", "NumericError", "Interrupted", "NotFound", "LibraryNotFound"]


class Error(Exception):
    """Base of every frugal error; `status` is the C enum fr_status value (0 for checks made in Python)."""
    status = 0

    def __init__(self, message, status=None):
        super().__init__(message)
        if status is not None:
            self.status = status


class InvalidArgument(Error, ValueError):
    status = 1


class ShapeError(Error, ValueError):
    status = 2


class OutOfMemory(Error, MemoryError):
    status = 3


class FileError(Error, OSError):
    status = 4


class FormatError(Error, ValueError):
    status = 5


class Unsupported(Error, NotImplementedError):
    status = 6


class DeviceError(Error, RuntimeError):
    status = 7


class NumericError(Error, ArithmeticError):
    status = 8


class Interrupted(Error, RuntimeError):
    status = 9


class NotFound(Error, LookupError):
    status = 10


class LibraryNotFound(Error, ImportError):
    """libfrugal could not be found or is too old for this package."""


_BY_STATUS = {c.status: c for c in (InvalidArgument, ShapeError, OutOfMemory, FileError, FormatError, Unsupported,
                                    DeviceError, NumericError, Interrupted, NotFound)}


def from_status(status, message):
    """The exception for a non-zero enum fr_status with frugal's message."""
    return _BY_STATUS.get(status, Error)(message, status)
