"""Refresh tokens that rotate: the newest one is kept in an Airflow Variable and used on the next run.

Microsoft's token endpoint may answer a refresh with a new refresh token, and a consent lives only as long
as its newest token is used; single-use endpoints (TD SYNNEX's OAuth) refuse a token once spent. So the
token a task receives must outlive the task: it is stored at once, through the Task SDK, in the Variable
``<conn_id>_refresh_token`` (one per connection, so every account keeps its own). Its name contains
``token``, one of Airflow's sensitive names, so the value is masked in the UI and in task logs; the new
token is also registered with the secrets masker before anything else can print it. The connection's
``refresh_token`` field holds the first token of a consent; the Variable, once written, takes precedence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests
from airflow.sdk import Variable
from airflow.sdk.exceptions import AirflowFailException
from airflow.sdk.log import mask_secret


class ConsentExpired(AirflowFailException):
    """The token endpoint refused the refresh token (``invalid_grant``): only a person renewing the consent
    helps, so the task fails at once, without retries."""


class MissingRefreshToken(ConsentExpired):
    """Neither the Variable nor the connection holds a refresh token."""


def variable_name(conn_id: str) -> str:
    """The Variable that holds the newest refresh token of connection ``conn_id``."""
    return f"{conn_id}_refresh_token"


def is_invalid_grant(response: requests.Response | None) -> bool:
    """Whether an OAuth token endpoint answered ``invalid_grant`` (RFC 6749 5.2: expired, revoked or used)."""
    if response is None or response.status_code not in (400, 401):
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error") == "invalid_grant"


class RotatingRefreshToken:
    """The refresh token of one connection: the newest known one, and every rotation kept at once.

    ``persist=False`` keeps a rotation in memory only: for callers outside a task (the UI's *Test* button
    runs in the API server under a temporary connection id, where no Variable can be written for it).
    """

    def __init__(self, conn_id: str, configured: str | None, *, persist: bool = True):
        self.conn_id = conn_id
        self.variable = variable_name(conn_id)
        self.configured = configured
        self.persist = persist
        self._current: str | None = None

    def _stored(self) -> str | None:
        return Variable.get(self.variable, default=None) or None

    @property
    def current(self) -> str:
        """The Variable's token when there is one, else the connection's ``refresh_token`` field."""
        if self._current is None:
            self._current = self._stored() or self.configured
            if not self._current:
                raise MissingRefreshToken(
                    f"Connection {self.conn_id} has no refresh token: put one in its refresh_token field "
                    f"(or in the Airflow Variable {self.variable})."
                )
        return self._current

    def exchange(self, send: Callable[[str], Any]) -> Any:
        """``send(refresh_token)`` -> the token endpoint's JSON answer; the refresh token it returns is kept.

        A refused token is tried once more when another task stored a newer one meanwhile (two tasks of a
        run refreshing at the same moment); otherwise the consent has expired and
        :class:`ConsentExpired` says how to renew it.
        """
        for _ in range(2):
            used = self.current
            try:
                reply = send(used)
            except requests.HTTPError as exc:
                if not is_invalid_grant(exc.response):
                    raise
                newer = self._stored()
                if newer and newer != used:
                    self._current = newer
                    continue
                break
            self.keep(reply.get("refresh_token") if isinstance(reply, dict) else None)
            return reply
        raise ConsentExpired(
            f"The refresh token of connection {self.conn_id} was refused as expired, revoked or already used "
            f"(invalid_grant): renew the consent and put its new refresh token into the Airflow Variable "
            f"{self.variable}, which takes precedence over the connection's refresh_token field."
        )

    def keep(self, returned: str | None) -> None:
        """Make ``returned`` the current token; stored in the Variable when it differs from the one used."""
        if not returned or returned == self._current:
            return
        mask_secret(returned)
        self._current = returned
        if self.persist:
            Variable.set(self.variable, returned, description=f"Newest refresh token of connection {self.conn_id}")
