"""``GET /api/executions/{id}/artifacts/{artifact_id}/content`` against the rows and files a test writes: a normal
download, and every way a row could try to reach a file outside the artifact roots (``api.artifact_files``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from maestro_dagster.db.models import Artifact, WorkflowExecution
from maestro_dagster.db.session import get_db


def _execution(settings, execution_id: str) -> None:
    with get_db(settings) as session:
        session.add(WorkflowExecution(id=execution_id, workflow_id="served", workflow_version=1, status="completed",
                                      total_nodes=2, started_at=datetime.now(UTC)))  # fmt: skip


def _artifact(settings, execution_id: str, artifact_id: str, **columns) -> str:
    with get_db(settings) as session:
        session.add(Artifact(id=artifact_id, execution_id=execution_id, node_id="a", **columns))
    return artifact_id


def _content(served, execution_id: str, artifact_id: str, role: str = "viewer"):
    return served.client(role).get(f"/api/executions/{execution_id}/artifacts/{artifact_id}/content")


def _listed(served, execution_id: str) -> dict[str, dict]:
    answer = served.client("viewer").get(f"/api/executions/{execution_id}/artifacts")
    assert answer.status_code == 200, answer.text
    return {a["id"]: a for a in answer.json()}


def test_a_file_in_the_artifacts_directory_downloads_as_an_attachment(served):
    served.store()
    _execution(served.settings, "exec_dl")
    folder = served.settings.artifacts_dir / "exec_dl" / "run" / "a"
    folder.mkdir(parents=True)
    data = bytes(range(256)) * 64
    (folder / "report.csv").write_bytes(data)
    _artifact(served.settings, "exec_dl", "art-csv", name="report.csv", file_path=str(folder / "report.csv"),
              content_type="text/csv", size_bytes=len(data))  # fmt: skip
    _artifact(served.settings, "exec_dl", "art-inline", name="notes.txt", content="hello", content_type="text/plain")
    listed = _listed(served, "exec_dl")
    assert listed["art-csv"]["downloadable"] is True and listed["art-inline"]["downloadable"] is True
    answer = _content(served, "exec_dl", "art-csv")
    assert answer.status_code == 200 and answer.content == data
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert answer.headers["x-content-type-options"] == "nosniff"
    inline = _content(served, "exec_dl", "art-inline")
    assert inline.status_code == 200 and inline.content == b"hello"
    assert inline.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    assert inline.headers["x-content-type-options"] == "nosniff"
    assert served.client(None).get("/api/executions/exec_dl/artifacts/art-csv/content").status_code == 401


def test_html_and_svg_are_served_as_octet_stream_attachments(served):
    served.store()
    _execution(served.settings, "exec_html")
    folder = served.settings.artifacts_dir / "exec_html"
    folder.mkdir(parents=True)
    page = b"<html><script>alert(1)</script></html>"
    (folder / "page.html").write_bytes(page)
    _artifact(served.settings, "exec_html", "art-html", name='x"; filename=evil.html', content_type="text/html",
              file_path=str(folder / "page.html"))  # fmt: skip
    _artifact(served.settings, "exec_html", "art-svg", name="pic.svg", content="<svg onload=alert(1)/>",
              content_type="image/svg+xml")  # fmt: skip
    answer = _content(served, "exec_html", "art-html")
    assert answer.status_code == 200 and answer.content == page
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"] == 'attachment; filename="x_filename_evil.html"'
    assert answer.headers["x-content-type-options"] == "nosniff"
    svg = _content(served, "exec_html", "art-svg")
    assert svg.status_code == 200 and svg.headers["content-type"] == "application/octet-stream"
    assert svg.headers["content-disposition"].startswith("attachment;")


def test_rows_pointing_outside_the_roots_are_refused(served, tmp_path):
    served.store()
    _execution(served.settings, "exec_evil")
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("do not serve")
    inside = served.settings.artifacts_dir / "exec_evil"
    inside.mkdir(parents=True)
    os.symlink(secret, inside / "link.txt")
    dotdot = f"{inside}/../../../outside/secret.txt"
    assert os.path.realpath(dotdot) == str(secret.resolve())  # the `..` path does reach the file
    rows = {
        _artifact(served.settings, "exec_evil", "outside", name="s", file_path=str(secret)): 403,
        _artifact(served.settings, "exec_evil", "symlink", name="s", file_path=str(inside / "link.txt")): 403,
        _artifact(served.settings, "exec_evil", "dotdot", name="s", file_path=dotdot): 403,
        _artifact(served.settings, "exec_evil", "relative", name="s", file_path="secret.txt"): 403,
        _artifact(served.settings, "exec_evil", "gone", name="s", file_path=str(inside / "gone.txt")): 404,
        _artifact(served.settings, "exec_evil", "a-dir", name="s", file_path=str(inside)): 404,
        _artifact(served.settings, "exec_evil", "nothing", name="s", uri="https://example.invalid/x"): 404,
    }
    listed = _listed(served, "exec_evil")
    for artifact_id, code in rows.items():
        answer = _content(served, "exec_evil", artifact_id)
        assert answer.status_code == code, (artifact_id, answer.text)
        body = answer.json()
        assert body["error"] == ("forbidden" if code == 403 else "not_found")
        assert b"do not serve" not in answer.content
        assert "MAESTRO_ARTIFACT_ROOTS" in body["message"] or code == 404
        assert listed[artifact_id]["downloadable"] is False


def test_another_executions_artifact_is_not_found(served):
    served.store()
    _execution(served.settings, "exec_mine")
    _execution(served.settings, "exec_theirs")
    _artifact(served.settings, "exec_theirs", "their-art", name="t.txt", content="theirs", content_type="text/plain")
    answer = _content(served, "exec_mine", "their-art")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"
    assert "GET /api/executions/exec_mine/artifacts" in answer.json()["message"]
    assert _content(served, "exec_mine", "no-such-row").status_code == 404
    assert _content(served, "exec_nobody", "their-art").status_code == 404
    assert _content(served, "exec_theirs", "their-art").content == b"theirs"


def test_an_extra_root_is_granted_by_the_setting(served, tmp_path, monkeypatch):
    """A file under a directory of ``MAESTRO_ARTIFACT_ROOTS`` is served; the same file without the setting is not."""
    from _served import serve

    from maestro_dagster.settings import get_settings

    served.store()
    _execution(served.settings, "exec_root")
    extra = tmp_path / "shared"
    extra.mkdir()
    (extra / "out.json").write_text('{"ok": true}')
    _artifact(served.settings, "exec_root", "shared", name="out.json", file_path=str(extra / "out.json"),
              content_type="application/json")  # fmt: skip
    assert _content(served, "exec_root", "shared").status_code == 403
    monkeypatch.setenv("MAESTRO_ARTIFACT_ROOTS", str(extra))
    get_settings.cache_clear()
    with serve(get_settings()) as granted:
        answer = _content(granted, "exec_root", "shared")
        assert answer.status_code == 200 and answer.json() == {"ok": True}
        assert answer.headers["content-type"].startswith("application/json")


def test_a_file_gone_after_the_check_is_not_found(served, monkeypatch):
    """The race made deterministic: the file is deleted right after the rule checked it (a wrapper around the real
    check, in this process where the app runs), before the answer is sent: 404, never a 5xx; a file removed once
    it is open is still sent whole."""
    from maestro_dagster.api import queries

    served.store()
    _execution(served.settings, "exec_race")
    folder = served.settings.artifacts_dir / "exec_race"
    folder.mkdir(parents=True)
    data = b"x" * (1024 * 1024)
    (folder / "out.bin").write_bytes(data)
    _artifact(served.settings, "exec_race", "racy", name="out.bin", file_path=str(folder / "out.bin"))
    checked = queries.artifact_download

    def check_then_delete(*args):
        found = checked(*args)
        assert found.path is not None and found.path.is_file()  # the check passed: the file was there
        found.path.unlink()
        return found

    monkeypatch.setattr(queries, "artifact_download", check_then_delete)
    answer = _content(served, "exec_race", "racy")
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "not_found" and "is gone" in answer.json()["message"]
    assert answer.json()["details"] == {"artifact_id": "racy", "execution_id": "exec_race"}

    from maestro_dagster.api.artifact_files import Download, open_file

    (folder / "late.bin").write_bytes(data)
    handle, size = open_file(Download("late.bin", "application/octet-stream", path=folder / "late.bin"), "x", "y")
    (folder / "late.bin").unlink()
    with handle:
        assert size == len(data) and handle.read() == data
