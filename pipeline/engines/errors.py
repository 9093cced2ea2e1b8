"""Bad input or configuration found on a worker reaches the driver as itself.

Engines wrap what a worker raises (Ray: RayTaskError around the original, Ray Data: a
UserCodeException; Beam: a RuntimeError "... [while running 'process']" with the original as
its context). For our own domain errors that wrapping only hides the one line the user needs
(`file:line: reason`), so the engine adapters re-raise the original; anything else is a bug
and keeps the engine's full report.
"""

from __future__ import annotations

import contextlib

from babelmill.pipeline.config import ConfigError
from babelmill.pipeline.core.stage import StageError
from babelmill.pipeline.io.readers import InputError
from babelmill.pipeline.runner.lock import RunStateError

#: errors of ours that mean "bad input or configuration"
DOMAIN_ERRORS = (InputError, ConfigError, StageError, RunStateError)


def find_domain_error(exc: BaseException) -> BaseException | None:
    """The first domain error in `exc`'s chain: Ray's `.cause`, `__cause__`, `__context__`."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        cause = getattr(e, "cause", None)  # ray.exceptions.RayTaskError
        if isinstance(cause, BaseException) and cause is not e:
            # RayTaskError.as_instanceof_cause() is both RayTaskError and the cause's class, and
            # its str is Ray's whole traceback: the plain cause is the error itself
            e = cause
            continue
        if isinstance(e, DOMAIN_ERRORS):
            return e
        e = e.__cause__ or e.__context__
    return None


@contextlib.contextmanager
def unwrap_domain_errors():
    try:
        yield
    except Exception as e:
        cause = find_domain_error(e)
        if cause is None or cause is e:
            raise
        raise cause from None
