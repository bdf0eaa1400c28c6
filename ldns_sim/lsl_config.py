"""Choosing liblsl's discovery scope before any other LSL call.

liblsl reads its configuration once, at its first use. ``ResolveScope = machine`` keeps
discovery multicast on this computer; a rig on a lab network wants ``site`` (liblsl's own
default) so that other machines find the streams. This module is the only place that
sets it. The default here is ``machine``: safe by default, like binding to loopback.
"""

from __future__ import annotations

import os

SCOPES = ("machine", "link", "site", "organization", "global")
ENV_VAR = "LDNS_SIM_LSL_SCOPE"
_configured: str | None = None


def configure_lsl(scope: str | None = None) -> str:
    """Set liblsl's ``ResolveScope`` (and a quiet log level); call before any pylsl object.

    Parameters
    ----------
    scope
        One of ``SCOPES``; ``None`` reads ``$LDNS_SIM_LSL_SCOPE``, else ``"machine"``.

    Returns
    -------
    str
        The scope in force. A second call with another scope cannot change liblsl's
        configuration any more and raises ``ValueError``.
    """
    global _configured
    scope = scope or os.environ.get(ENV_VAR) or "machine"
    if scope not in SCOPES:
        raise ValueError(f"LSL scope {scope!r} is not one of {', '.join(SCOPES)}")
    if _configured is not None:
        if scope != _configured:
            raise ValueError(f"LSL scope is already {_configured!r}; liblsl reads it once")
        return scope
    import pylsl

    pylsl.set_config_content(f"[log]\nlevel = -2\n\n[multicast]\nResolveScope = {scope}\n")
    _configured = scope
    return scope
