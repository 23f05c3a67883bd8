"""Referrers, pure (transfer/domain/referrers.py): the setting, the fallback tag, the registry's index read,
paging links and the split that keeps an image with its referrers."""

from __future__ import annotations

import pytest

from transfer.domain.referrers import (
    Descriptor,
    ReferrerChoice,
    descriptors,
    fallback_tag,
    group_split,
    next_page,
)

SIG = "application/vnd.cncf.notary.signature"
SBOM = "application/spdx+json"
D = "sha256:" + "a" * 64


def test_the_setting_is_all_none_or_a_list_of_artifact_types() -> None:
    assert ReferrerChoice.parse("all").travels(None)
    assert ReferrerChoice.parse("ALL").travels(SBOM)
    none = ReferrerChoice.parse("none")
    assert none.none
    assert not none.travels(SIG)
    some = ReferrerChoice.parse(f" {SIG} , {SBOM}")
    assert some.travels(SIG)
    assert some.travels(SBOM)
    assert not some.travels("application/vnd.in-toto+json")
    assert not some.travels(None)
    assert str(some) == f"{SBOM},{SIG}"


@pytest.mark.parametrize("raw", ["", " , ", "signature", "a/b c", "x/" + "y" * 200])
def test_a_bad_setting_says_what_is_wrong(raw: str) -> None:
    with pytest.raises(ValueError, match="artifact type"):
        ReferrerChoice.parse(raw)


def test_the_fallback_tag_is_the_digest_with_a_dash() -> None:
    assert fallback_tag(D) == "sha256-" + "a" * 64


def test_an_index_lists_its_valid_descriptors_with_their_artifact_type() -> None:
    body = {
        "schemaVersion": 2,
        "manifests": [
            {"digest": D, "artifactType": SIG, "mediaType": "x", "size": 1},
            {"digest": "sha256:" + "b" * 64},
            {"digest": "md5:abc"},
            "junk",
        ],
    }
    assert descriptors(body) == [Descriptor(D, SIG), Descriptor("sha256:" + "b" * 64, None)]
    assert descriptors({"schemaVersion": 2}) == []
    with pytest.raises(ValueError, match="not an OCI image index"):
        descriptors({"manifests": "x"})
    with pytest.raises(ValueError, match="not an OCI image index"):
        descriptors([])


def test_the_next_page_is_read_from_the_link_header() -> None:
    assert next_page('</v2/a/referrers/x?last=y&n=2>; rel="next"') == "/v2/a/referrers/x?last=y&n=2"
    assert next_page(None) is None
    assert next_page('</x>; rel="prev"') is None


def test_an_image_and_its_referrers_share_a_run_where_they_fit() -> None:
    groups = [("a", "a1", "a2"), ("b", "b1"), ("c",)]
    assert group_split(groups, 4) == [("a", "a1", "a2"), ("b", "b1", "c")]
    assert group_split(groups, 3) == [("a", "a1", "a2"), ("b", "b1", "c")]
    assert group_split(groups, 2) == [("a", "a1"), ("a2",), ("b", "b1"), ("c",)]
    many = [tuple(f"i{i}-{j}" for j in range(3)) for i in range(20)]  # 60 artifacts, groups of 3
    runs = group_split(many, 50)
    assert [len(r) for r in runs] == [48, 12]
    assert all(len({a.split("-")[0] for a in run}) * 3 == len(run) for run in runs)
