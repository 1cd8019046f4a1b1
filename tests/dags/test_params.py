"""The manual DAGs' Params: JSON Schema refuses bad conf before a run exists, and the templates render
every string Param exactly under native rendering. Unit tests: no DAG run, no database."""

from __future__ import annotations

import copy

import pytest
from airflow.sdk.definitions.param import ParamValidationError

from include.params import text_template
from tests.dags.helpers import load_dag

MANUAL, DEACTIVATE = "provider_invoice_manual_sync", "provider_invoice_deactivate"


def _validated(dag_id: str, conf: dict) -> dict:
    """What ``create_dagrun`` does with a run's conf: merge it into the DAG's Params and validate."""
    params = copy.deepcopy(load_dag(dag_id).params)
    params.update(conf)
    return params.validate()


@pytest.mark.parametrize(
    ("conf", "complaint"),
    [
        ({"provider": "microsoft", "invoice_id": "G1", "override_tolerance": -5, "override_reason": "x"}, "minimum"),
        ({"provider": "microsoft", "invoice_id": "G1", "override_tolerance": 0, "override_reason": "x"}, "minimum"),
        (
            {"provider": "microsoft", "invoice_id": "G1", "override_tolerance": "5", "override_reason": "x"},
            "is not of type",
        ),
        ({"provider": "ibm", "invoice_id": "G1"}, "is not one of"),
        ({"provider": "microsoft", "invoice_id": ""}, "non-empty"),
        ({"provider": "microsoft", "invoice_id": "   "}, "does not match"),
        ({"provider": "microsoft"}, "invoice_id"),
        ({"provider": "microsoft", "invoice_id": "G1", "account": "emea/../x"}, "does not match"),
        ({"provider": "microsoft", "invoice_id": "G1", "account": "partner_center_emea\n"}, "does not match"),
        ({"provider": "microsoft", "invoice_id": "G1", "account": 5}, "is not of type"),
    ],
)
def test_bad_manual_sync_conf_is_refused(conf, complaint):
    with pytest.raises(ParamValidationError, match=complaint):
        _validated(MANUAL, conf)


@pytest.mark.parametrize(
    ("conf", "complaint"),
    [
        ({"provider": "microsoft", "invoice_id": "G1"}, "reason"),
        ({"provider": "microsoft", "invoice_id": "G1", "reason": " "}, "does not match"),
    ],
)
def test_deactivation_needs_a_reason(conf, complaint):
    with pytest.raises(ParamValidationError, match=complaint):
        _validated(DEACTIVATE, conf)


def test_good_conf_passes_with_an_empty_override():
    assert _validated(MANUAL, {"provider": "synnex", "invoice_id": "4100002"}) == {
        "provider": "synnex",
        "invoice_id": "4100002",
        "account": None,
        "override_tolerance": None,
        "override_reason": None,
    }


@pytest.mark.parametrize("dag_id", [MANUAL, DEACTIVATE])
@pytest.mark.parametrize("text", ["4100002", "1_0", "1e5", "'quoted'", "[1]", "None", " padded ", "ünïcode <&>"])
def test_string_params_render_as_exactly_their_text(dag_id, text):
    env = load_dag(dag_id).get_template_env()
    assert env.from_string(text_template("invoice_id")).render(params={"invoice_id": text}) == text


def test_null_params_render_as_none_and_numbers_as_numbers():
    env = load_dag(MANUAL).get_template_env()
    assert env.from_string(text_template("override_reason")).render(params={"override_reason": None}) is None
    assert env.from_string("{{ params.override_tolerance }}").render(params={"override_tolerance": None}) is None
    assert env.from_string("{{ params.override_tolerance }}").render(params={"override_tolerance": 1329.75}) == 1329.75
