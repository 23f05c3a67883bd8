"""The CLI finds its settings in a local.settings.json (./local.settings.json, or --settings FILE), then the
environment, which wins as with `func start`; the file's problems name the file; afterwards the process's
environment is as it was."""

import json
from pathlib import Path

import pytest

from transfer.domain.errors import SettingsError
from transfer.entrypoints import cli
from transfer.entrypoints.cli.parser import build_parser
from transfer.entrypoints.cli.settings_file import applied, read_values


def write(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_values_become_the_environment_for_the_command_and_go_afterwards(tmp_path: Path) -> None:
    file = write(tmp_path / "s.json", {"IsEncrypted": False, "Values": {"TRANSFER_REGISTRY": "fromfile"}})
    environ: dict[str, str] = {"OTHER": "kept"}
    with applied(str(file), environ, cwd=tmp_path) as path:
        assert path == file
        assert environ == {"OTHER": "kept", "TRANSFER_REGISTRY": "fromfile"}
    assert environ == {"OTHER": "kept"}


def test_the_environment_wins_over_the_file_as_with_func_start(tmp_path: Path) -> None:
    file = write(
        tmp_path / "s.json", {"Values": {"TRANSFER_REGISTRY": "fromfile", "TRANSFER_CLOUD": "AzureCloud"}}
    )
    environ = {"TRANSFER_REGISTRY": "fromenv"}
    with applied(str(file), environ, cwd=tmp_path):
        assert environ == {"TRANSFER_REGISTRY": "fromenv", "TRANSFER_CLOUD": "AzureCloud"}
    assert environ == {"TRANSFER_REGISTRY": "fromenv"}


def test_an_empty_environment_variable_does_not_hide_the_file(tmp_path: Path) -> None:
    file = write(tmp_path / "s.json", {"Values": {"TRANSFER_REGISTRY": "fromfile"}})
    environ = {"TRANSFER_REGISTRY": ""}
    with applied(str(file), environ, cwd=tmp_path):
        assert environ["TRANSFER_REGISTRY"] == "fromfile"
    assert environ == {"TRANSFER_REGISTRY": ""}


def test_local_settings_json_in_the_current_folder_is_read_without_the_option(tmp_path: Path) -> None:
    write(tmp_path / "local.settings.json", {"IsEncrypted": False, "Values": {"A": "1", "B": True, "C": 2}})
    environ: dict[str, str] = {}
    with applied(None, environ, cwd=tmp_path) as path:
        assert path == tmp_path / "local.settings.json"
        assert environ == {"A": "1", "B": "true", "C": "2"}


def test_no_file_and_no_option_leaves_the_environment_alone(tmp_path: Path) -> None:
    environ = {"A": "1"}
    with applied(None, environ, cwd=tmp_path) as path:
        assert path is None
        assert environ == {"A": "1"}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "not JSON (line 1"),
        ('["a"]', "must be {"),
        ('{"Values": []}', "must be {"),
        ('{"IsEncrypted": true, "Values": {"A": "x"}}', "IsEncrypted is true"),
        ('{"Values": {"A": {"nested": 1}}}', "Values.A must be a string"),
    ],
)
def test_a_bad_settings_file_is_a_settings_error_naming_the_file(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        read_values(path)
    assert str(path) in caught.value.problems[0]
    assert problem in caught.value.problems[0]


def test_settings_is_taken_before_or_after_the_command() -> None:
    assert build_parser().parse_args(["--settings", "f.json", "runs"]).settings == "f.json"
    assert build_parser().parse_args(["runs", "--settings", "f.json"]).settings == "f.json"


def test_the_cli_exits_2_naming_a_missing_settings_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.json"
    assert cli.main(["--settings", str(missing), "runs"]) == 2
    assert f"--settings {missing}: no such file" in capsys.readouterr().err


def test_the_file_settings_reach_the_settings_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TRANSFER_EXPORT_SCHEDULE", "TRANSFER_REGISTRY", "AZURE_SUBSCRIPTION_ID"):
        monkeypatch.delenv(name, raising=False)
    file = write(tmp_path / "s.json", {"Values": {"TRANSFER_EXPORT_SCHEDULE": "0 0 25 * * *"}})
    assert cli.main(["--settings", str(file), "health"]) == 2
    err = capsys.readouterr().err
    assert "TRANSFER_EXPORT_SCHEDULE is not a valid NCRONTAB schedule: the hour field" in err
    assert "AZURE_SUBSCRIPTION_ID is required" in err
