import pytest

from transfer.domain.artifacts import MAX_PER_RUN, describe, parse_artifacts, split
from transfer.domain.errors import InvalidInput
from transfer.domain.references import normalise

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("hello-world", "hello-world:latest"),
        ("samples/hello-world:v1", "samples/hello-world:v1"),
        (f"samples/nginx@{DIGEST}", f"samples/nginx@{DIGEST}"),
        ("a/b/c_d__e.f-g", "a/b/c_d__e.f-g:latest"),
        ("repo:1.0.0-rc_1", "repo:1.0.0-rc_1"),
        ("repo:_x", "repo:_x"),
    ],
)
def test_valid_references_are_normalised(given: str, expected: str) -> None:
    assert parse_artifacts([given]) == [expected]
    assert normalise(given) == expected


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("", "non-empty"),
        (" repo", "surrounding spaces"),
        ("Repo", "lower-case"),
        ("repo/", "lower-case"),
        ("repo:", "tag must be"),
        ("repo:.bad", "tag must be"),
        ("repo:" + "t" * 129, "tag must be"),
        ("repo@sha256:" + "A" * 64, "64 lower-case hex"),
        ("repo@sha256:abc", "64 lower-case hex"),
        ("repo@md5:" + "a" * 32, "64 lower-case hex"),
        (f"repo:v1@{DIGEST}", "not both"),
        ("myregistry.azurecr.io/repo:v1", "registry host"),
        ("localhost:5000/repo", "registry host"),
        ("a" * 256, "at most 255"),
        ("re--po", None),
        ("re..po", "lower-case"),
        ("repo:v1\n", "surrounding spaces"),
        ("repo\n", "surrounding spaces"),
    ],
)
def test_invalid_references_name_index_and_reason(given: str, reason: str | None) -> None:
    if reason is None:
        assert parse_artifacts(["ok", given]) == ["ok:latest", f"{given}:latest"]
        return
    with pytest.raises(InvalidInput) as caught:
        parse_artifacts(["ok", given])
    assert caught.value.target == "artifacts[1]"
    assert reason in caught.value.message


@pytest.mark.parametrize(("given", "message"), [("repo", "list"), ([], "at least one"), ([1], "string")])
def test_shape_errors(given: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_artifacts(given)


def test_duplicates_after_normalisation_are_dropped_in_order() -> None:
    assert parse_artifacts(["b", "a:latest", "b:latest", "a"]) == ["b:latest", "a:latest"]


def test_request_size_is_bounded() -> None:
    with pytest.raises(InvalidInput, match="at most 1000"):
        parse_artifacts([f"r{i}" for i in range(1001)])


def test_split_into_runs_of_at_most_fifty() -> None:
    refs = [f"r{i}:latest" for i in range(121)]
    runs = split(refs)
    assert [len(r) for r in runs] == [50, 50, 21]
    assert [a for run in runs for a in run] == refs
    assert split(refs[:MAX_PER_RUN]) == [tuple(refs[:50])]


def test_describe_shortens_long_lists() -> None:
    assert describe(["a", "b"]) == "a, b"
    assert describe(["a", "b", "c", "d", "e"]) == "a, b, c and 2 more"
