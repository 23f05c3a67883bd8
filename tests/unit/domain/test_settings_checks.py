"""Schedules checked field by field, connection strings checked key by key, at load time: each problem
names the setting and what is wrong (the field, the missing key), never a secret."""

import pytest

from transfer.domain.connection_strings import connection_string_problem
from transfer.domain.errors import SettingsError
from transfer.domain.settings import load_settings

BASE = {
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001",
    "TRANSFER_RESOURCE_GROUP": "transfer-rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipe",
    "TransferState": "UseDevelopmentStorage=true",
}
KEY = "c2VjcmV0a2V5PT0="


def the_problem(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings({**BASE, **env})
    (problem,) = caught.value.problems
    return problem


@pytest.mark.parametrize(
    ("setting", "value", "field"),
    [
        ("TRANSFER_EXPORT_SCHEDULE", "0 0 25 * * *", "hour field (0-23)"),
        ("TRANSFER_EXPORT_SCHEDULE", "abc abc abc abc abc abc", "second field (0-59)"),
        ("TRANSFER_RECONCILE_SCHEDULE", "99 99 99 99 99 99", "second field (0-59)"),
        ("TRANSFER_SWEEP_SCHEDULE", "0 60 * * * *", "minute field (0-59)"),
        ("TRANSFER_SWEEP_SCHEDULE", "0 0 0 32 * *", "day field (1-31)"),
        ("TRANSFER_SWEEP_SCHEDULE", "0 0 0 0 * *", "day field (1-31)"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 0 0 * 13 *", "month field (1-12 or JAN-DEC)"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 0 0 * FOO *", "month field"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 0 0 * * 8", "day-of-week field (0-6 or SUN-SAT)"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 0 0 * * Funday", "day-of-week field"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 */0 * * * *", "minute field"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 5-1 * * * *", "minute field"),
        ("TRANSFER_EXPORT_SCHEDULE", "0 1,,2 * * * *", "minute field"),
    ],
)
def test_a_bad_schedule_names_the_setting_and_the_field(setting: str, value: str, field: str) -> None:
    problem = the_problem({setting: value})
    assert problem.startswith(f"{setting} is not a valid NCRONTAB schedule")
    assert field in problem


def test_a_schedule_needs_six_fields() -> None:
    assert "6 fields" in the_problem({"TRANSFER_EXPORT_SCHEDULE": "0 2 * * *"})


@pytest.mark.parametrize(
    "value",
    [
        "0 0 2 * * *",
        "*/30 * * * * *",
        "0 0,30 8-18/2 1-15 JAN,jul-Sep MON-FRI",
        "0 0 0 * * 0,7",
        "0 5/15 * * * *",
    ],
)
def test_valid_schedules_pass(value: str) -> None:
    assert load_settings({**BASE, "TRANSFER_EXPORT_SCHEDULE": value}).export_schedule == value


@pytest.mark.parametrize(
    ("conn", "missing"),
    [
        (f"DefaultEndpointsProtocol=https;AccountKey={KEY};EndpointSuffix=core.net", "no AccountName"),
        ("DefaultEndpointsProtocol=https;AccountName=acct;EndpointSuffix=core.windows.net", "no AccountKey"),
        ("AccountName=acct;TableEndpoint=http://127.0.0.1:10002/acct", "no AccountKey"),
        ("DefaultEndpointsProtocol=https", "no AccountName"),
        ("AccountName=acct", "no AccountKey"),
        (f"AccountName=a;AccountKey={KEY};TableEndpoint=127.0.0.1:1", "'tableendpoint' must be an http"),
        (f"AccountName=a;AccountKey={KEY};TabelEndpoint=http://127.0.0.1:1", "unknown key 'tabelendpoint'"),
        (f"AccountName=acct;{KEY}", "malformed"),
        ("just-a-name", "malformed"),
        # what sourcing unquoted KEY=VALUE lines leaves of a connection string: cut at its first ';'
        ("DefaultEndpointsProtocol=http", "no AccountName"),
        ("SharedAccessSignature=sv=2024&sig=x", "AccountName or BlobEndpoint"),
    ],
)
def test_a_bad_connection_string_names_the_setting_and_what_is_missing(conn: str, missing: str) -> None:
    envs = {
        "TransferState": {"TransferState": conn},
        "TransferStorage": {"TransferStorage": conn, "TRANSFER_IMPORT_PIPELINE": "importpipe"},
        "AzureWebJobsStorage": {"TransferState": "", "AzureWebJobsStorage": conn},
    }
    for setting, env in envs.items():
        problem = the_problem(env)
        assert problem.startswith(f"{setting} is not a usable storage connection string: ")
        assert missing in problem
        assert KEY not in problem


@pytest.mark.parametrize(
    "conn",
    [
        "UseDevelopmentStorage=true",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};EndpointSuffix=core.windows.net",
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
        "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;",
        "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature=sv=2024-11-04&sig=abc%3D",
    ],
)
def test_usable_connection_strings_pass(conn: str) -> None:
    assert connection_string_problem(conn) is None
    assert load_settings({**BASE, "TransferState": conn}).state_storage.connection_string == conn
