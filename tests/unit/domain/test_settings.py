import pytest

from transfer.domain.errors import SettingsError
from transfer.domain.settings import CLOUDS, StaleAction, load_settings

SUB = "00000000-0000-0000-0000-000000000001"
BASE = {
    "AZURE_SUBSCRIPTION_ID": SUB,
    "TRANSFER_RESOURCE_GROUP": "transfer-rg",
    "TRANSFER_REGISTRY": "myregistry",
    "TRANSFER_EXPORT_PIPELINE": "exportpipe",
    "TransferState": "UseDevelopmentStorage=true",
}
SECRET_CONN = (
    "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.windows.net"
)


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    return caught.value.problems


def test_defaults() -> None:
    s = load_settings(BASE)
    assert (s.export_schedule, s.reconcile_schedule, s.sweep_schedule) == (
        "0 0 2 * * *",
        "0 */5 * * * *",
        "0 30 3 * * *",
    )
    assert (s.target_container, s.stale_action, s.window_days, s.margin_hours, s.retention_hours) == (
        "transfer",
        StaleAction.REFRESH,
        60,
        24,
        72,
    )
    assert s.arm_endpoint == "https://management.azure.com"
    assert s.credential_scope == "https://management.azure.com/.default"
    assert s.pipeline_api_version == "2025-06-01-preview"
    assert s.import_pipeline is None
    assert s.export_artifacts == ()
    assert s.pipeline_id("export").endswith("/registries/myregistry/exportPipelines/exportpipe")


def test_every_problem_is_reported_at_once_and_names_its_setting() -> None:
    found = problems(
        {
            "AZURE_SUBSCRIPTION_ID": "nope",
            "TRANSFER_REGISTRY": "my-registry",
            "TRANSFER_EXPORT_PIPELINE": "exp",
            "TRANSFER_STALE_BLOB_ACTION": "delete",
            "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS": "sixty",
            "TRANSFER_RECONCILE_SCHEDULE": "*/5 * * * *",
            "TRANSFER_CLOUD": "Mars",
        }
    )
    text = "\n".join(found)
    for name in (
        "AZURE_SUBSCRIPTION_ID",
        "TRANSFER_RESOURCE_GROUP",
        "TRANSFER_REGISTRY",
        "TRANSFER_EXPORT_PIPELINE",
        "TRANSFER_STALE_BLOB_ACTION",
        "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS",
        "TRANSFER_RECONCILE_SCHEDULE",
        "TRANSFER_CLOUD",
        "TransferState",
    ):
        assert name in text, name


def test_a_role_is_required() -> None:
    env = {k: v for k, v in BASE.items() if k != "TRANSFER_EXPORT_PIPELINE"}
    assert any("TRANSFER_IMPORT_PIPELINE" in p for p in problems(env))


def test_import_role_needs_the_watched_storage_but_export_role_does_not() -> None:
    load_settings(BASE)
    env = {**BASE, "TRANSFER_IMPORT_PIPELINE": "importpipe"}
    assert any(p.startswith("TransferStorage is required") for p in problems(env))
    s = load_settings({**env, "TransferStorage__blobServiceUri": "https://acct.blob.core.windows.net"})
    assert s.transfer_storage is not None
    assert s.transfer_storage.blob_service_uri == "https://acct.blob.core.windows.net"


def test_artifacts_as_json_or_comma_list_with_the_bad_index_named() -> None:
    assert load_settings({**BASE, "TRANSFER_EXPORT_ARTIFACTS": '["a", "b:v1"]'}).export_artifacts == (
        "a:latest",
        "b:v1",
    )
    assert load_settings({**BASE, "TRANSFER_EXPORT_ARTIFACTS": "a, b:v1"}).export_artifacts == (
        "a:latest",
        "b:v1",
    )
    found = problems({**BASE, "TRANSFER_EXPORT_ARTIFACTS": '["a", "BAD"]'})
    assert found[0].startswith("TRANSFER_EXPORT_ARTIFACTS[1]")
    assert "not valid JSON" in problems({**BASE, "TRANSFER_EXPORT_ARTIFACTS": "[oops"})[0]


@pytest.mark.parametrize("cloud", list(CLOUDS))
def test_sovereign_clouds_select_endpoint_and_storage_suffix(cloud: str) -> None:
    s = load_settings(
        {**BASE, "TRANSFER_CLOUD": cloud, "TransferState": "", "TransferState__accountName": "acct"}
    )
    assert s.arm_endpoint == CLOUDS[cloud].arm_endpoint
    assert s.state_storage.table_service_uri == f"https://acct.table.{CLOUDS[cloud].storage_suffix}"


def test_arm_endpoint_override_for_the_emulator_or_a_private_cloud() -> None:
    s = load_settings({**BASE, "TRANSFER_ARM_ENDPOINT": "https://127.0.0.1:8443/"})
    assert s.arm_endpoint == "https://127.0.0.1:8443"
    assert any(
        "TRANSFER_ARM_ENDPOINT" in p for p in problems({**BASE, "TRANSFER_ARM_ENDPOINT": "http://arm"})
    )


def test_state_falls_back_to_azure_webjobs_storage() -> None:
    env = {k: v for k, v in BASE.items() if k != "TransferState"}
    assert load_settings(
        {**env, "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    ).state_storage.setting == ("AzureWebJobsStorage")


def test_copy_target_rules() -> None:
    url = "https://target.blob.core.windows.net/transfer"
    secret = "https://kv.vault.azure.net/secrets/targetsas"
    s = load_settings(
        {**BASE, "TRANSFER_COPY_TARGET_URL": url, "TRANSFER_COPY_TARGET_SAS_SECRET_URI": secret}
    )
    assert (s.copy_target_url, s.copy_target_sas_secret_uri) == (url, secret)
    assert any("query string" in p for p in problems({**BASE, "TRANSFER_COPY_TARGET_URL": url + "?sig=abc"}))
    bad_secret = {
        **BASE,
        "TRANSFER_COPY_TARGET_URL": url,
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI": "https://kv/x",
    }
    assert any("Key Vault secret URI" in p for p in problems(bad_secret))
    assert load_settings({**BASE, "TRANSFER_COPY_TARGET_URL": "http://127.0.0.1:10000/devstoreaccount1/t"})


def test_margin_must_be_inside_the_window() -> None:
    env = {**BASE, "TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS": "1", "TRANSFER_STALE_MARGIN_HOURS": "24"}
    assert any("shorter than the window" in p for p in problems(env))


def test_secrets_never_appear_in_errors_or_repr() -> None:
    env = {**BASE, "TransferState": SECRET_CONN, "TRANSFER_REGISTRY": "x"}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    assert "c2VjcmV0a2V5" not in str(caught.value)
    s = load_settings({**BASE, "TransferState": SECRET_CONN})
    assert "c2VjcmV0a2V5" not in repr(s)


def test_schedules_accept_day_names() -> None:
    assert load_settings({**BASE, "TRANSFER_EXPORT_SCHEDULE": "0 15 1 * * Mon-Fri"}).export_schedule == (
        "0 15 1 * * Mon-Fri"
    )


# ---- each required setting missing, each setting malformed: the problem names it -----------------------

BOTH_SIDES = {
    **BASE,
    "TRANSFER_IMPORT_PIPELINE": "importpipe",
    "TransferStorage": "UseDevelopmentStorage=true",
}
COPY_URL = "https://target.blob.core.windows.net/transfer"
# (setting named, changes to BOTH_SIDES; None removes a setting)
MISSING = [
    ("AZURE_SUBSCRIPTION_ID", {"AZURE_SUBSCRIPTION_ID": None}),
    ("AZURE_SUBSCRIPTION_ID", {"AZURE_SUBSCRIPTION_ID": "   "}),
    ("TRANSFER_RESOURCE_GROUP", {"TRANSFER_RESOURCE_GROUP": None}),
    ("TRANSFER_REGISTRY", {"TRANSFER_REGISTRY": None}),
    ("TRANSFER_REGISTRY", {"TRANSFER_REGISTRY": ""}),
    ("TRANSFER_EXPORT_PIPELINE", {"TRANSFER_EXPORT_PIPELINE": None, "TRANSFER_IMPORT_PIPELINE": None}),
    ("TransferStorage", {"TransferStorage": None}),
    ("TransferState", {"TransferState": None}),
]
MALFORMED = [
    ("AZURE_SUBSCRIPTION_ID", {"AZURE_SUBSCRIPTION_ID": "not-a-guid"}),
    ("TRANSFER_RESOURCE_GROUP", {"TRANSFER_RESOURCE_GROUP": "bad/group"}),
    ("TRANSFER_RESOURCE_GROUP", {"TRANSFER_RESOURCE_GROUP": "g" * 91}),
    ("TRANSFER_REGISTRY", {"TRANSFER_REGISTRY": "my-registry"}),
    ("TRANSFER_REGISTRY", {"TRANSFER_REGISTRY": "r" * 51}),
    ("TRANSFER_EXPORT_PIPELINE", {"TRANSFER_EXPORT_PIPELINE": "exp"}),
    ("TRANSFER_IMPORT_PIPELINE", {"TRANSFER_IMPORT_PIPELINE": "import_pipe"}),
    ("TRANSFER_EXPORT_ARTIFACTS", {"TRANSFER_EXPORT_ARTIFACTS": '["BAD:v1"]'}),
    ("TRANSFER_EXPORT_ARTIFACTS", {"TRANSFER_EXPORT_ARTIFACTS": "[oops"}),
    ("TRANSFER_EXPORT_ARTIFACTS", {"TRANSFER_EXPORT_ARTIFACTS": "a:v1", "TRANSFER_EXPORT_PIPELINE": None}),
    ("TRANSFER_EXPORT_INCREMENTAL", {"TRANSFER_EXPORT_INCREMENTAL": "maybe"}),
    ("TRANSFER_EXPORT_MAX_ARTIFACTS", {"TRANSFER_EXPORT_MAX_ARTIFACTS": "0"}),
    ("TRANSFER_EXPORT_MAX_ARTIFACTS", {"TRANSFER_EXPORT_MAX_ARTIFACTS": "many"}),
    ("TRANSFER_REGISTRY_ENDPOINT", {"TRANSFER_REGISTRY_ENDPOINT": "http://myregistry.azurecr.io"}),
    ("TRANSFER_REGISTRY_ENDPOINT", {"TRANSFER_REGISTRY_ENDPOINT": "https://r.azurecr.io/?token=x"}),
    ("TRANSFER_EXPORT_SCHEDULE", {"TRANSFER_EXPORT_SCHEDULE": "*/5 * * * *"}),
    ("TRANSFER_RECONCILE_SCHEDULE", {"TRANSFER_RECONCILE_SCHEDULE": "every 5 minutes"}),
    ("TRANSFER_SWEEP_SCHEDULE", {"TRANSFER_SWEEP_SCHEDULE": "0 30 3 * * * *"}),
    ("TRANSFER_TARGET_CONTAINER", {"TRANSFER_TARGET_CONTAINER": "Transfer_Container"}),
    ("TransferStorage", {"TransferStorage": "not a connection string"}),
    (
        "TransferStorage__blobServiceUri",
        {"TransferStorage": None, "TransferStorage__blobServiceUri": "http://acct.blob.core.windows.net"},
    ),
    ("TransferState", {"TransferState": "garbage"}),
    (
        "TransferState__tableServiceUri",
        {"TransferState": None, "TransferState__tableServiceUri": "http://acct.table.core.windows.net"},
    ),
    (
        "TransferState",  # a blob endpoint only: no table endpoint
        {"TransferState": None, "TransferState__blobServiceUri": "https://acct.blob.core.windows.net"},
    ),
    ("TRANSFER_STALE_BLOB_ACTION", {"TRANSFER_STALE_BLOB_ACTION": "delete"}),
    ("TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS", {"TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS": "sixty"}),
    ("TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS", {"TRANSFER_SOURCE_TRIGGER_WINDOW_DAYS": "366"}),
    ("TRANSFER_STALE_MARGIN_HOURS", {"TRANSFER_STALE_MARGIN_HOURS": "-1"}),
    ("TRANSFER_STALE_MARGIN_HOURS", {"TRANSFER_STALE_MARGIN_HOURS": str(60 * 24)}),
    ("TRANSFER_RUN_RETENTION_HOURS", {"TRANSFER_RUN_RETENTION_HOURS": "72h"}),
    ("TRANSFER_RUN_TIMEOUT_HOURS", {"TRANSFER_RUN_TIMEOUT_HOURS": "0"}),
    ("TRANSFER_IMPORT_MAX_ATTEMPTS", {"TRANSFER_IMPORT_MAX_ATTEMPTS": "101"}),
    ("TRANSFER_COPY_TARGET_URL", {"TRANSFER_COPY_TARGET_URL": COPY_URL + "?sv=1&sig=c2VjcmV0"}),
    ("TRANSFER_COPY_TARGET_URL", {"TRANSFER_COPY_TARGET_URL": "ftp://target/transfer"}),
    ("TRANSFER_COPY_TARGET_URL", {"TRANSFER_COPY_TARGET_URL": COPY_URL, "TRANSFER_EXPORT_PIPELINE": None}),
    (
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI",
        {"TRANSFER_COPY_TARGET_URL": COPY_URL, "TRANSFER_COPY_TARGET_SAS_SECRET_URI": "https://kv/x"},
    ),
    (
        "TRANSFER_COPY_TARGET_SAS_SECRET_URI",
        {"TRANSFER_COPY_TARGET_SAS_SECRET_URI": "https://kv.vault.azure.net/secrets/targetsas"},
    ),
    ("TRANSFER_CLOUD", {"TRANSFER_CLOUD": "Mars"}),
    ("TRANSFER_ARM_ENDPOINT", {"TRANSFER_ARM_ENDPOINT": "http://arm"}),
    ("TRANSFER_PIPELINE_API_VERSION", {"TRANSFER_PIPELINE_API_VERSION": "latest"}),
    ("AZURE_CLIENT_ID", {"AZURE_CLIENT_ID": "not-a-guid"}),
]
SETTING_CASES = [
    pytest.param(name, changes, id=f"{kind}-{name}-{index}")
    for kind, cases in (("missing", MISSING), ("malformed", MALFORMED))
    for index, (name, changes) in enumerate(cases)
]


def changed(changes: dict[str, str | None], base: dict[str, str] = BOTH_SIDES) -> dict[str, str]:
    env = {**base, **{k: v for k, v in changes.items() if v is not None}}
    return {k: v for k, v in env.items() if changes.get(k, "") is not None}


def test_the_base_of_the_setting_cases_is_valid() -> None:
    settings = load_settings(BOTH_SIDES)
    assert (settings.export_pipeline, settings.import_pipeline) == ("exportpipe", "importpipe")


@pytest.mark.parametrize(("setting", "changes"), SETTING_CASES)
def test_each_missing_or_malformed_setting_is_one_problem_naming_it(
    setting: str, changes: dict[str, str | None]
) -> None:
    found = problems(changed(changes))
    assert len(found) == 1, found
    assert setting in found[0]
    assert "c2VjcmV0" not in found[0]  # a SAS in a setting is refused without being repeated


def test_the_docs_table_is_the_settings_table() -> None:
    """docs/settings.md shows every row of the settings table, each with its meaning and default."""
    from pathlib import Path

    from transfer.domain.settings_table import SETTINGS, markdown_table

    docs = (Path(__file__).resolve().parents[3] / "docs" / "settings.md").read_text(encoding="utf-8")
    assert markdown_table() in docs, "docs/settings.md's table must be:\n" + markdown_table()
    assert len({setting.name for setting in SETTINGS}) == len(SETTINGS)


def test_every_default_is_the_tables() -> None:
    from transfer.domain.settings_table import SETTINGS

    settings = load_settings(BASE)
    for setting in SETTINGS:
        if setting.default is not None:
            value = getattr(settings, setting.field)
            shown = (value.name if hasattr(value, "arm_endpoint") else str(value)).lower()
            assert shown == setting.default.lower(), setting.name
