"""What can go wrong, in one place: the error family, poll-error reasons and exit codes."""

from __future__ import annotations

# Exit codes of every command. ``wait`` uses FAILURE for a terminal failure state.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_TIMEOUT = 2
EXIT_USAGE = 3
EXIT_INTERRUPTED = 130  # Ctrl+C, as a shell reports a process killed by SIGINT

# Why a poll failed: the values of the ``reason`` label.
AUTH = "auth"
TIMEOUT = "timeout"
CONNECTION = "connection"
RATE_LIMITED = "rate_limited"
HTTP_ERROR = "http_error"
BAD_RESPONSE = "bad_response"
REASONS = (AUTH, TIMEOUT, CONNECTION, RATE_LIMITED, HTTP_ERROR, BAD_RESPONSE)


class ExporterError(Exception):
    """Base of every error the exporter raises on purpose."""


class InvalidConfigError(ExporterError):
    """A configuration file (or the environment) is unusable; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class UsageError(ExporterError):
    """The flags do not fit together; the command exits EXIT_USAGE with this message."""


class UpstreamError(ExporterError):
    """An upstream call failed; ``reason`` is one of REASONS."""

    def __init__(
        self,
        reason: str,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after
