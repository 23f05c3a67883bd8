"""The one table of Azure SDK errors (transfer/adapters/sdk_errors.py): what each SDK exception becomes,
what a caller declares about one call, and that no secret survives in a message."""

from __future__ import annotations

from typing import Any

import pytest

from transfer.adapters.sdk_errors import IGNORE, redact, redact_json, status_of, translate, translated
from transfer.domain.errors import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    PreconditionFailed,
    Refused,
    Throttled,
    TransferError,
    Unavailable,
)


def http_error(status: int, headers: dict[str, str] | None = None, body: str = "") -> Exception:
    from azure.core.exceptions import HttpResponseError

    class Raw:
        def __init__(self) -> None:
            self.status_code = status
            self.headers = headers or {}
            self.reason = "scripted"
            self.content_type = "application/json"

        def text(self, encoding: str | None = None) -> str:
            return body

        def body(self) -> bytes:
            return body.encode()

    return HttpResponseError(response=Raw())  # type: ignore[arg-type]


def test_translate_throttled_with_retry_after() -> None:
    error = translate(http_error(429, {"Retry-After": "17"}), "ARM: reading x")
    assert isinstance(error, Throttled)
    assert error.retry_after == 17


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_translate_server_errors(status: int) -> None:
    assert isinstance(translate(http_error(status), "ARM: reading x"), Unavailable)


def test_translate_unreachable() -> None:
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    assert isinstance(translate(ServiceRequestError("refused"), "x"), Unavailable)
    assert isinstance(translate(ServiceResponseError("reset"), "x"), Unavailable)


@pytest.mark.parametrize("status", [401, 403])
def test_translate_denied(status: int) -> None:
    error = translate(http_error(status), "ARM: reading x")
    assert type(error) is AccessDenied
    assert error.code == "AccessDenied"
    assert "role assignments" in error.message


def test_a_token_that_could_not_be_had_is_transient() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    error = translate(ClientAuthenticationError("ManagedIdentityCredential: timed out"), "ARM: reading x")
    assert isinstance(error, Unavailable)
    assert "could not get a token" in error.message


def test_translate_never_carries_a_signature() -> None:
    detail = (
        "copy source https://acct.blob.core.windows.net/c/b?sv=1&sig=SECRETSIG%3D failed; AccountKey=KEY=="
    )
    error = translate(http_error(400), "copying b", detail=detail)
    assert "SECRETSIG" not in error.message
    assert "KEY==" not in error.message
    assert "https://acct.blob.core.windows.net/c/b" in error.message


def test_redact() -> None:
    assert redact("GET /c/b?sv=1&sig=abc%2B HTTP/1.1") == "GET /c/b?sv=1&sig=REDACTED HTTP/1.1"
    assert "tok" not in redact("Authorization: Bearer tok.en.value")
    assert "abc" not in redact("DefaultEndpointsProtocol=https;AccountKey=abc==;EndpointSuffix=x")
    assert redact("x" * 5000, limit=100).endswith("…")


def sdk_error(kind: str, status: int) -> Exception:
    """An azure.core exception class of that name (ResourceNotFoundError, ...) with a response of `status`."""
    from azure.core import exceptions

    raw: Any = http_error(status).response  # type: ignore[attr-defined]
    error: Exception = getattr(exceptions, kind)(response=raw)
    return error


def raised(error: BaseException, **declarations: Any) -> BaseException | None:
    """What leaves a `translated` block whose body raises `error` (None: the block ended quietly)."""
    try:
        with translated("table storage: reading x", **declarations):
            raise error
    except BaseException as exc:
        return exc
    return None


def test_status_of() -> None:
    assert status_of(http_error(412)) == 412
    assert status_of(ValueError("no status")) is None


def test_an_error_that_is_already_the_projects_passes_unchanged() -> None:
    mine = NotFound("no run x", target="run_id")
    assert raised(mine) is mine
    assert raised(mine, absent=IGNORE) is mine


def test_base_exceptions_pass_unchanged() -> None:
    interrupt = KeyboardInterrupt()
    assert raised(interrupt) is interrupt
    exit_ = GeneratorExit()
    assert raised(exit_, absent=IGNORE) is exit_


def test_the_block_translates_by_the_table_and_hides_the_sdk_error() -> None:
    error = raised(http_error(503))
    assert isinstance(error, Unavailable)
    assert error.message == "table storage: reading x: the service failed (503)"
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_without_a_block_error_nothing_happens() -> None:
    with translated("x", absent=IGNORE) as call:
        pass
    assert not call.ignored


@pytest.mark.parametrize(
    ("kind", "status"),
    [("ResourceNotFoundError", 404), ("ResourceExistsError", 409), ("ResourceModifiedError", 412)],
)
def test_undeclared_404_409_412_are_plain_errors(kind: str, status: int) -> None:
    error = raised(sdk_error(kind, status))
    assert type(error) is (TransferError if status == 404 else Refused)  # a 404 may heal, the others not
    assert error.message == f"table storage: reading x: failed ({status})"


def storage_error(status: int, code: str) -> Exception:
    """What azure-storage-blob raises for an answer with `x-ms-error-code: code`: ResourceModifiedError for
    ConditionNotMet, an HttpResponseError for the others, the code on `error_code` either way."""
    from azure.core.exceptions import ResourceModifiedError

    raw: Any = http_error(status, {"x-ms-error-code": code}).response  # type: ignore[attr-defined]
    error: Exception = (
        ResourceModifiedError(response=raw) if code == "ConditionNotMet" else http_error(status)
    )
    error.error_code = code  # type: ignore[attr-defined]
    return error


LOST = PreconditionFailed("blob x changed meanwhile")


@pytest.mark.parametrize(
    ("status", "code"),
    [(400, "MetadataTooLarge"), (409, "BlobImmutableDueToPolicy"), (412, "LeaseIdMissing"), (400, "")],
)
def test_a_4xx_a_retry_cannot_change_is_refused_even_where_a_lost_race_is_declared(
    status: int, code: str
) -> None:
    error = raised(storage_error(status, code), changed=LOST, absent=LOST)
    assert isinstance(error, Refused)
    assert f"failed ({status})" in error.message
    assert error.service_codes == ((code,) if code else ())


def test_only_a_412_condition_not_met_is_the_lost_race() -> None:
    assert raised(storage_error(412, "ConditionNotMet"), changed=LOST) is LOST
    assert raised(http_error(412), changed=LOST) is LOST  # no code: the ETag race, as before


def test_a_408_is_transient() -> None:
    assert isinstance(raised(http_error(408)), Unavailable)


def test_absent_ignored() -> None:
    with translated("x", absent=IGNORE) as call:
        raise sdk_error("ResourceNotFoundError", 404)
    assert call.ignored


def test_absent_raises_the_callers_error() -> None:
    mine = NotFound("no such secret", target="secretUri")
    error = raised(sdk_error("ResourceNotFoundError", 404), absent=mine)
    assert error is mine
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_exists_ignored_or_raised() -> None:
    with translated("x", exists=IGNORE) as call:
        raise sdk_error("ResourceExistsError", 409)
    assert call.ignored
    mine = AlreadyExists("run x already exists")
    assert raised(sdk_error("ResourceExistsError", 409), exists=mine) is mine
    assert type(raised(sdk_error("ResourceExistsError", 409), absent=IGNORE)) is Refused


@pytest.mark.parametrize("error", [lambda: sdk_error("ResourceModifiedError", 412), lambda: http_error(412)])
def test_changed_is_a_modified_error_or_any_412(error: Any) -> None:
    lost = PreconditionFailed("run x changed meanwhile", target="run_id")
    assert raised(error(), changed=lost) is lost


def test_a_declaration_applies_only_to_its_own_kind() -> None:
    lost = PreconditionFailed("changed")
    assert isinstance(raised(http_error(429), changed=lost, absent=lost, exists=lost), Throttled)


def test_ignore_if_is_the_callers_predicate() -> None:
    def active(exc: Exception) -> bool:
        return status_of(exc) == 409

    with translated("x", ignore_if=active) as call:
        raise http_error(409)
    assert call.ignored
    assert type(raised(http_error(400), ignore_if=active)) is Refused


def test_detail_is_appended_without_secrets() -> None:
    def detail(exc: Exception) -> str:
        return "InvalidTemplate: bad uri https://a.blob.core.windows.net/c?sv=1&sig=SECRET"

    with pytest.raises(TransferError) as caught, translated("ARM: starting deployment d", detail=detail):
        raise http_error(400)
    assert caught.value.message.startswith("ARM: starting deployment d: failed (400): InvalidTemplate")
    assert "SECRET" not in caught.value.message


def test_redact_json_cleans_every_string_of_an_arm_body_and_shortens_none() -> None:
    message = "could not write https://a.blob.core.windows.net/c/x?sv=1&sig=SECRET: " + "x" * 5000
    body = {
        "name": "run1",
        "properties": {
            "response": {"pipelineRunErrorMessage": message, "importedArtifacts": ["a:v1"], "n": 3},
            "request": {"source": {"name": "what?now"}},
        },
    }
    cleaned = redact_json(body)
    error = cleaned["properties"]["response"]["pipelineRunErrorMessage"]
    assert "SECRET" not in error
    assert error.endswith("x" * 5000)  # the service's words are kept whole
    assert cleaned["properties"]["response"]["importedArtifacts"] == ["a:v1"]
    assert cleaned["properties"]["request"]["source"]["name"] == "what?now"  # not a URL: unchanged
    assert cleaned["properties"]["response"]["n"] == 3


@pytest.mark.parametrize("status", [401, 403])
def test_a_call_authorised_by_a_sas_is_told_to_check_the_sas_not_the_managed_identity(status: int) -> None:
    with pytest.raises(AccessDenied) as caught, translated("blob storage: copying b", sas=True):
        raise http_error(status)
    assert "check the SAS" in caught.value.message
    assert "managed identity" not in caught.value.message  # a copy failing on a SAS was hinted so
    identity = raised(http_error(status))
    assert isinstance(identity, AccessDenied)
    assert "managed identity" in identity.message
