"""Parsing a SAS token's expiry and permissions, and Key Vault secret URIs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from transfer.adapters.keyvault import parse_sas, parse_sas_time, split_secret_uri
from transfer.domain.errors import InvalidInput

SIG = "sig=AbCdEf0123456789%2B%2F%3D"


@pytest.mark.parametrize(
    ("token", "expires", "permissions"),
    [
        (f"sv=2025-05-05&sp=rl&se=2027-03-01T08:30:00Z&{SIG}", datetime(2027, 3, 1, 8, 30, tzinfo=UTC), "rl"),
        (
            f"?sv=2025-05-05&sp=racwdl&se=2027-03-01T08%3A30%3A00Z&{SIG}",
            datetime(2027, 3, 1, 8, 30, tzinfo=UTC),
            "racwdl",
        ),
        (f"se=2027-03-01&sp=r&{SIG}", datetime(2027, 3, 1, tzinfo=UTC), "r"),
        (f"se=2027-03-01T08:30Z&sp=w&{SIG}", datetime(2027, 3, 1, 8, 30, tzinfo=UTC), "w"),
        (
            f"se=2027-03-01T08:30:00.1234567Z&sp=rl&{SIG}",
            datetime(2027, 3, 1, 8, 30, 0, 123456, tzinfo=UTC),
            "rl",
        ),
        (f"se=2027-03-01T10:30:00%2B02:00&sp=rl&{SIG}", datetime(2027, 3, 1, 8, 30, tzinfo=UTC), "rl"),
        (f"se=2027-03-01T10:30:00+02:00&sp=rl&{SIG}", datetime(2027, 3, 1, 8, 30, tzinfo=UTC), "rl"),
        (f"  ?SP=rl&SE=2027-03-01T08:30:00Z&{SIG}\n", datetime(2027, 3, 1, 8, 30, tzinfo=UTC), "rl"),
        (f"sv=2025-05-05&{SIG}", None, ""),
    ],
)
def test_parse_sas(token: str, expires: datetime | None, permissions: str) -> None:
    assert parse_sas(token) == (expires, permissions)


def test_expiry_is_timezone_aware_utc() -> None:
    expires, _ = parse_sas(f"se=2027-03-01T08:30:00Z&{SIG}")
    assert expires is not None
    assert expires.utcoffset() == timedelta(0)


def test_a_sas_time_without_zone_is_utc() -> None:
    assert parse_sas_time("2027-03-01T08:30:00") == datetime(2027, 3, 1, 8, 30, tzinfo=UTC)
    assert parse_sas_time("2027-03-01T08:30:00+01:00") == datetime(2027, 3, 1, 7, 30, tzinfo=UTC)
    assert parse_sas_time("2027-03-01T08:30:00+01:00").tzinfo == UTC
    assert parse_sas_time("2027-03-01T08:30:00-05:00") == datetime(
        2027, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=-5))
    )


@pytest.mark.parametrize(
    "value",
    ["", "?", "not a sas", "https://acct.blob.core.windows.net/c", "sv=2025-05-05&sp=rl&se=2027-03-01"],
)
def test_not_a_sas(value: str) -> None:
    with pytest.raises(ValueError, match="not a SAS"):
        parse_sas(value)


def test_a_bad_expiry_is_reported_without_the_token() -> None:
    token = f"se=next-tuesday&sp=rl&{SIG}"
    with pytest.raises(ValueError, match="se=") as caught:
        parse_sas(token)
    assert "AbCdEf" not in str(caught.value)
    assert "next-tuesday" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (
            "https://kv1.vault.azure.net/secrets/export-sas",
            ("https://kv1.vault.azure.net", "export-sas", None),
        ),
        (
            "https://kv1.vault.azure.net/secrets/export-sas/",
            ("https://kv1.vault.azure.net", "export-sas", None),
        ),
        (
            "https://kv1.vault.usgovcloudapi.net/secrets/sas/0123456789abcdef0123456789abcdef",
            ("https://kv1.vault.usgovcloudapi.net", "sas", "0123456789abcdef0123456789abcdef"),
        ),
        ("https://127.0.0.1:8443/secrets/sas", ("https://127.0.0.1:8443", "sas", None)),
    ],
)
def test_split_secret_uri(uri: str, expected: tuple[str, str, str | None]) -> None:
    assert split_secret_uri(uri) == expected


@pytest.mark.parametrize(
    "uri",
    [
        "http://kv1.vault.azure.net/secrets/sas",
        "https://kv1.vault.azure.net/keys/sas",
        "https://kv1.vault.azure.net/secrets/",
        "https://kv1.vault.azure.net/secrets/bad_name",
        "https://kv1.vault.azure.net/secrets/sas?api-version=7.4",
        "kv1.vault.azure.net/secrets/sas",
    ],
)
def test_not_a_secret_uri(uri: str) -> None:
    with pytest.raises(InvalidInput):
        split_secret_uri(uri)
