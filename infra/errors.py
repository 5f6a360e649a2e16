"""The one error type the infrastructure raises: a one-line message a person can act on."""


class InfraError(Exception):
    """A missing prerequisite, an unreachable service or a broken state directory."""
