"""Errors a user can act on. The CLI prints ``str(error)`` as one line and exits 2."""


class LdnsSimError(Exception):
    """Base class: the message names the input (file, field, value) and what was expected."""


class DataError(LdnsSimError):
    """A recording or adapter that cannot be turned into SpikeData."""


class ConfigError(LdnsSimError):
    """A TOML file or command-line value that does not validate."""


class BundleError(LdnsSimError):
    """A model bundle that is missing, corrupt or from an incompatible version."""


class SourceError(LdnsSimError):
    """A condition source that cannot start (no gamepad, no LSL stream, bad endpoint)."""


class SinkError(LdnsSimError):
    """An output that cannot open (port in use, unwritable file)."""
