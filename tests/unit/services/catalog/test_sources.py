"""Signed-in users import only uploads and files under the import roots."""

from __future__ import annotations

import pytest

from services.catalog.sources import SourcePolicy
from services.errors import ValidationError
from services.identity.principal import Principal

USER = Principal.user("uma", {"researcher"})


@pytest.fixture
def layout(tmp_path):
    uploads, catalog, outside = tmp_path / "state" / "uploads", tmp_path / "catalog", tmp_path / "x"
    for folder in (uploads, catalog, outside):
        folder.mkdir(parents=True)
    (uploads / "ok.csv").write_text("ts,close\n")
    (outside / "secret.csv").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (uploads / "link.csv").symlink_to(outside / "secret.csv")
    return SourcePolicy.for_workbench(tmp_path / "state", str(catalog)), uploads, outside


@pytest.mark.parametrize("source", [
    "{uploads}/../../x/secret.csv", "{outside}/secret.csv", "{uploads}/link.csv", "/etc/passwd",
    "file:///etc/passwd", "http://169.254.169.254/latest/meta-data", "{uploads}/missing.csv",
])
def test_sources_outside_the_roots_are_refused_without_their_content(layout, source):
    policy, uploads, outside = layout
    source = source.format(uploads=uploads, outside=outside)

    with pytest.raises(ValidationError) as refused:
        policy.check(source, USER)

    message = str(refused.value)
    assert "Upload the file instead" in message and "root:x:0" not in message
    assert "\n" not in message


def test_uploads_and_catalog_files_are_allowed_and_the_operator_is_not_confined(layout):
    policy, uploads, outside = layout

    assert policy.check(str(uploads / "ok.csv"), USER) == str((uploads / "ok.csv").resolve())
    assert policy.check(str(outside / "secret.csv"), Principal.local()) == str(
        outside / "secret.csv")


def test_configured_roots_replace_the_default_and_may_be_url_prefixes(tmp_path, monkeypatch):
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "a.csv").write_text("x\n")
    monkeypatch.setenv("WORKBENCH_IMPORT_ROOTS",
                       f"{tmp_path / 'incoming'}, s3://bucket/drop/")
    policy = SourcePolicy.for_workbench(tmp_path / "state", str(tmp_path / "catalog"))

    assert policy.check(str(tmp_path / "incoming" / "a.csv"), USER).endswith("a.csv")
    assert policy.check("s3://bucket/drop/b.csv", USER) == "s3://bucket/drop/b.csv"
    with pytest.raises(ValidationError):
        policy.check("s3://bucket/other/b.csv", USER)


def test_an_upload_keeps_a_safe_name_and_is_discarded_after_import(layout):
    policy, uploads, _ = layout

    path = policy.store_upload("../../evil name.csv", b"ts,close\n")
    policy.discard_upload(str(path))

    assert path.parent == uploads and "evil_name.csv" in path.name
    assert not path.exists()
