"""Shared test set-up: LSL discovery stays on this machine, unique names, real components."""

import uuid

import pytest

from ldns_sim.lsl_config import configure_lsl

# Before any other LSL call: no discovery traffic leaves this machine during tests.
configure_lsl("machine")


@pytest.fixture
def unique_name(request) -> str:
    """A stream name no other test (or earlier run) uses."""
    return f"ldns-test-{request.node.name[:40]}-{uuid.uuid4().hex[:8]}"
