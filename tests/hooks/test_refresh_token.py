"""Rotating refresh tokens against the sandbox's rotating token endpoint, hook by hook.

The Variable store is the Task SDK's outside a task only in tests/dags/test_sync_credentials.py (through
``dag.test()``); here a dictionary stands in for it, so that two hooks of "two tasks" can share it.
"""

from __future__ import annotations

import pytest

from include.providers.microsoft.sandbox import REFRESH_TOKEN
from plugins.hooks import refresh_token
from plugins.hooks.partner_center import GRAPH_RESOURCE, PARTNER_CENTER_RESOURCE, PartnerCenterHook
from plugins.hooks.refresh_token import ConsentExpired, variable_name
from tests.hooks.helpers import calls

VARIABLE = variable_name("partner_center_default")


class Variables(dict):
    """What the Task SDK's ``Variable`` does for the hooks: get with a default, set."""

    def get(self, key, default=None):
        return super().get(key, default)

    def set(self, key, value, description=None):
        self[key] = value


@pytest.fixture
def variables(monkeypatch):
    store = Variables()
    monkeypatch.setattr(refresh_token, "Variable", store)
    return store


@pytest.fixture
def rotating(serve, demo_data_dir):
    return serve(demo_data_dir, rotate_refresh_tokens=True)


def test_each_rotation_is_kept_and_used_for_the_next_token(rotating, variables):
    hook = PartnerCenterHook()
    hook.get_access_token(PARTNER_CENTER_RESOURCE)
    hook.get_access_token(GRAPH_RESOURCE)
    first, second = rotating.issued_refresh_tokens
    assert variables == {VARIABLE: second}
    next_run = PartnerCenterHook()
    next_run.list_invoices()
    assert variables[VARIABLE] == rotating.issued_refresh_tokens[-1] != second
    assert [entry["status"] for entry in calls(rotating, "/oauth2/token")] == [200, 200, 200]


def test_the_variable_takes_precedence_over_the_connection_field(rotating, variables):
    PartnerCenterHook().get_access_token()
    assert PartnerCenterHook().refresh_token.current == rotating.issued_refresh_tokens[-1] != REFRESH_TOKEN


def test_a_token_spent_by_another_task_meanwhile_is_replaced_by_the_newer_one(rotating, variables):
    """Two mapped fetches read the same token; the one that refreshes second retries with the first's."""
    late = PartnerCenterHook()
    assert late.refresh_token.current == REFRESH_TOKEN
    PartnerCenterHook().get_access_token()
    late.get_access_token()
    assert [entry["status"] for entry in calls(rotating, "/oauth2/token")] == [200, 400, 200]
    assert variables[VARIABLE] == rotating.issued_refresh_tokens[-1]
    assert len(rotating.issued_refresh_tokens) == 2


def test_an_expired_consent_fails_with_how_to_renew_it(rotating, variables):
    variables[VARIABLE] = "sbx-rt-revoked-long-ago"
    with pytest.raises(ConsentExpired) as failure:
        PartnerCenterHook().list_invoices()
    assert str(failure.value) == (
        "The refresh token of connection partner_center_default was refused as expired, revoked or already "
        "used (invalid_grant): renew the consent and put its new refresh token into the Airflow Variable "
        "partner_center_default_refresh_token, which takes precedence over the connection's refresh_token field."
    )
    assert "sbx-rt-revoked-long-ago" not in str(failure.value)
    assert len(calls(rotating, "/oauth2/token")) == 1  # no retry can renew a consent


def test_a_connection_without_refresh_token_says_where_to_put_one(rotating, variables):
    hook = PartnerCenterHook()
    hook.extras.pop("refresh_token")
    with pytest.raises(ConsentExpired, match="Connection partner_center_default has no refresh token: put one"):
        hook.get_access_token()
    assert calls(rotating, "/oauth2/token") == []
