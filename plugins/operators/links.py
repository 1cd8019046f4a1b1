"""Extra link from a ``checksum_validation`` task to the GX Data Docs page of its validation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink, BaseXCom

if TYPE_CHECKING:
    from airflow.sdk import Context


class GXDataDocsLink(BaseOperatorLink):
    """Airflow 3 serialises a link as (name, XCom key); the UI reads the URL the task pushed."""

    name = "GX Data Docs"

    @classmethod
    def persist(cls, context: Context, url: str) -> None:
        context["ti"].xcom_push(key=cls().xcom_key, value=url)

    def get_link(self, operator, *, ti_key) -> str:
        return BaseXCom.get_value(ti_key=ti_key, key=self.xcom_key) or ""
