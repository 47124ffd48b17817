"""A limit whose amount is computed (issue 14): `deadline.start` may take its `amount` from a
decision table's output column, and `validate` checks at deploy that every value that column
can give is a whole number (0 or more) of the declared unit. Anything else that is not a
constant is refused, at the task, as before."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from complaintflow.web.cli import cli
from conftest import PROCESSES

AMOUNT = '<spiffworkflow:parameter id="amount" type="str" value="handling_workdays" />'
GENERAL_SERVICE = '<outputEntry id="rule_general_service_out_1"><text>5</text></outputEntry>'


@pytest.fixture
def bank(tmp_path):
    """A copy of the bank procedure (BPMN, its decision table, forms, roles, legal states) to break."""
    folder = tmp_path / "processes"
    folder.mkdir()
    for name in ("bank.bpmn", "bank_limits.dmn", "roles.json", "legal_states.json"):
        shutil.copy(PROCESSES / name, folder)
    shutil.copytree(PROCESSES / "forms" / "bank", folder / "forms" / "bank")
    return folder


@pytest.fixture
def validate(service, chain_key_env):
    def run(folder):
        return CliRunner().invoke(cli, ["--db", str(service.engine.url), "validate", str(folder)], env=chain_key_env)
    return run


def edit(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def test_an_amount_read_from_a_decision_table_of_whole_numbers_is_accepted(bank, validate):
    result = validate(bank)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK: 1 file(s)")


@pytest.mark.parametrize("value, shown", [("2.5", "2.5"), ("-1", "-1"), ('"five"', '"five"'), ("True", "True")])
def test_a_decision_table_value_that_is_not_a_whole_number_is_refused_at_the_limit(bank, validate, value, shown):
    edit(bank / "bank_limits.dmn", GENERAL_SERVICE, GENERAL_SERVICE.replace("<text>5</text>", f"<text>{value}</text>"))
    result = validate(bank)
    assert result.exit_code != 0
    assert ("element 'start_handling' (起算处理时限): deadline 'handling': amount handling_workdays comes from a "
            f"DMN output, whose value {shown} is not a whole number (0 or more)") in result.output


def test_an_amount_that_is_neither_a_constant_nor_a_decision_output_is_refused(bank, validate):
    edit(bank / "bank.bpmn", AMOUNT, AMOUNT.replace('value="handling_workdays"', 'value="handling_days"'))
    result = validate(bank)
    assert result.exit_code != 0
    assert ("deadline 'handling': amount handling_days must be a whole number (0 or more) or the name of a DMN "
            "output of this process whose values are") in result.output


def test_an_expression_over_a_decision_output_is_not_taken_on_trust(bank, validate):
    edit(bank / "bank.bpmn", AMOUNT, AMOUNT.replace('value="handling_workdays"', 'value="handling_workdays - 10"'))
    result = validate(bank)
    assert result.exit_code != 0
    assert "amount handling_workdays - 10 must be a whole number (0 or more) or the name of a DMN output" in result.output


def test_a_decision_table_in_another_folder_does_not_count(bank, validate, tmp_path):
    (bank / "bank_limits.dmn").rename(tmp_path / "bank_limits.dmn")
    result = validate(bank / "bank.bpmn")
    assert result.exit_code != 0
    assert "amount handling_workdays must be a whole number (0 or more) or the name of a DMN output" in result.output
