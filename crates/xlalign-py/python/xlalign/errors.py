"""The exceptions of xlalign. Every error the Rust core reports is one of these, with the
core's message (the same text the CLI prints)."""

from __future__ import annotations


class Error(Exception):
    """Base class of every xlalign error."""

    #: The error's class as the JavaScript package names it (``Error.code`` there).
    code = "error"


class ModelError(Error):
    """The model file is not GGUF, is truncated or inconsistent, or is not a model xlalign runs."""

    code = "model"


class InputError(Error, ValueError):
    """Text or options the caller can fix: an empty side, a text over the size limit, an
    unknown option or method, a layer the model does not have."""

    code = "input"


class BackendError(Error, RuntimeError):
    """The device: no GPU where one was asked for, threads that cannot start."""

    code = "backend"


class FileError(Error, OSError):
    """A file that cannot be found, opened or read (the model file included)."""

    code = "io"


class PairError(Error):
    """One pair of a batch that could not be aligned, in the batch's result list in place of
    its alignment (``align_batch(..., errors="return")``). ``index`` is its position in the
    batch; ``cause`` the error it got (an :class:`InputError` for an empty side, say)."""

    def __init__(self, index: int, cause: Error):
        super().__init__(f"pair {index}: {cause}")
        self.index = index
        self.cause = cause
        self.code = cause.code


_BY_KIND = {"Model": ModelError, "Input": InputError, "Backend": BackendError, "Io": FileError}


def _from_kind(kind: str, message: str) -> Error:
    return _BY_KIND.get(kind, Error)(message)
