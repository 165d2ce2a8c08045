"""Uploading, describing and downloading files through the REST API, and sending them."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import func, select

from tests.conftest import backend_settings, group_of
from warbler.config import Settings
from warbler.errors import NotFound
from warbler.store.models import StoredFile

LIMIT = 64 * 1024
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    # Small enough that an oversize upload is cheap, large enough for every file below.
    return backend_settings(backend, request, tmp_path / "data", max_upload_bytes=LIMIT)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def docx_bytes() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


async def upload(client, actor, conv, name, data, content_type="application/octet-stream"):
    return await client.post(
        "/files",
        data={"conversation_id": conv},
        files={"file": (name, data, content_type)},
        headers=actor.headers,
    )


async def stored_rows(services) -> int:
    async with services.db.read() as s:
        return int(await s.scalar(select(func.count()).select_from(StoredFile)) or 0)


def stored_paths(settings: Settings) -> list[Path]:
    root = settings.files_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_png_sent_as_image_message_downloads_identically_for_another_member(
    client, make_tenant
):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    data = png_bytes()

    r = await upload(client, ann, conv, "cat.png", data, "image/png")
    assert r.status_code == 201, r.text
    meta = r.json()
    assert (meta["name"], meta["content_type"], meta["size"]) == ("cat.png", "image/png", len(data))
    assert meta["conversation_id"] == conv and meta["uploader_id"] == ann.id

    sent = await client.post(
        f"/conversations/{conv}/messages",
        json={"kind": "image", "file_id": meta["id"]},
        headers=ann.headers,
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["file"] == meta

    assert (await client.get(f"/files/{meta['id']}", headers=bo.headers)).json() == meta
    got = await client.get(f"/files/{meta['id']}/content", headers=bo.headers)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-length"] == str(len(data))
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["cache-control"] == "private"
    assert got.headers["etag"] == f'"{meta["sha256"]}"'
    assert got.headers["content-disposition"].startswith('inline; filename="cat.png"')

    again = await client.get(
        f"/files/{meta['id']}/content",
        headers={**bo.headers, "If-None-Match": got.headers["etag"]},
    )
    assert again.status_code == 304 and again.content == b""


async def test_sha256_is_of_the_exact_bytes(client, make_tenant):
    import hashlib

    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "notes.txt", "第一行\nline two\n".encode(), "text/plain")
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256("第一行\nline two\n".encode()).hexdigest()


async def test_chinese_filename_round_trips_through_filename_star(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    name = "2024 第三季度报告.pdf"
    r = await upload(client, ann, conv, name, PDF, "application/pdf")
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name

    got = await client.get(f"/files/{r.json()['id']}/content", headers=bo.headers)
    disposition = got.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="2024 .pdf"; ')
    star = disposition.split("filename*=", 1)[1]
    assert star.startswith("UTF-8''")
    assert unquote(star.removeprefix("UTF-8''"), encoding="utf-8") == name


async def test_name_without_ascii_letters_gets_a_readable_fallback(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "报告.pdf", PDF, "application/pdf")
    got = await client.get(f"/files/{r.json()['id']}/content", headers=ann.headers)
    assert got.headers["content-disposition"].startswith('attachment; filename="file.pdf"; ')


async def test_uploaded_path_is_reduced_to_a_plain_name(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    # Written by hand: httpx would percent-escape the control characters before sending.
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="conversation_id"\r\n\r\n'
        f"{conv}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="..\\..\\etc/\x01pass\x1bwd\u202e.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nroot:x:0:0\r\n--{boundary}--\r\n"
    ).encode()
    r = await client.post(
        "/files",
        content=body,
        headers={**ann.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "passwd.txt"


async def test_non_member_and_other_tenant_get_404_for_everything(client, make_tenant, services):
    acme, other = await make_tenant("acme"), await make_tenant("other")
    ann, bo, carl = await acme.user("ann"), await acme.user("bo"), await acme.user("carl")
    eve = await other.user("eve")
    conv = await group_of(client, ann, bo)
    file_id = (await upload(client, ann, conv, "a.png", png_bytes(), "image/png")).json()["id"]

    for outsider in (carl, eve):
        for path in (f"/files/{file_id}", f"/files/{file_id}/content"):
            r = await client.get(path, headers=outsider.headers)
            assert r.status_code == 404, (outsider.username, path, r.text)
            assert r.json()["error"]["code"] == "not_found"
            # The answer must not reveal which conversation the file belongs to.
            assert conv not in r.text
        denied = await upload(client, outsider, conv, "b.png", png_bytes(), "image/png")
        assert denied.status_code == 404
    assert (
        await client.get("/files/01NOSUCHFILE0000000000000", headers=ann.headers)
    ).status_code == 404
    assert await stored_rows(services) == 1


async def test_oversize_upload_is_413_and_leaves_no_row_and_no_bytes(
    client, make_tenant, services, settings
):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)

    r = await upload(client, ann, conv, "big.txt", b"a" * (LIMIT + 1), "text/plain")
    assert r.status_code == 413, r.text
    assert r.json()["error"]["code"] == "too_large"
    assert r.json()["error"]["details"]["limit"] == LIMIT
    assert await stored_rows(services) == 0
    assert stored_paths(settings) == []

    exact = await upload(client, ann, conv, "exact.txt", b"a" * LIMIT, "text/plain")
    assert exact.status_code == 201, exact.text
    assert exact.json()["size"] == LIMIT


async def test_body_far_beyond_the_limit_is_refused_before_it_is_read(
    client, make_tenant, services, settings
):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "huge.txt", b"a" * (LIMIT + 128 * 1024), "text/plain")
    assert r.status_code == 413
    assert await stored_rows(services) == 0
    assert stored_paths(settings) == []


async def test_type_outside_the_allow_list_is_415(client, make_tenant, services, settings):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "page.html", b"<script>alert(1)</script>", "text/html")
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_type"
    assert "image/png" in r.json()["error"]["details"]["allowed"]
    # With no declared type and no telling bytes or extension, the type is unknown: refused.
    unknown = await upload(client, ann, conv, "blob", b"\x00\x01\x02 opaque")
    assert unknown.status_code == 415
    assert await stored_rows(services) == 0
    assert stored_paths(settings) == []


async def test_pdf_bytes_declared_as_png_are_415(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "photo.png", PDF, "image/png")
    assert r.status_code == 415, r.text
    assert r.json()["error"]["details"] == {"declared": "image/png", "detected": "application/pdf"}
    # Nor may an undeclared .png name smuggle in something else.
    by_name = await upload(client, ann, conv, "photo.png", b"just some text, no image")
    assert by_name.status_code == 415
    # Nor text declared as a ZIP-based Office document.
    docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    fake = await upload(client, ann, conv, "r.docx", b"plain text", docx)
    assert fake.status_code == 415
    assert await stored_rows(services) == 0


async def test_undeclared_type_is_inferred_from_magic_bytes_and_extension(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    png = await upload(client, ann, conv, "screenshot", png_bytes())
    assert png.status_code == 201, png.text
    assert png.json()["content_type"] == "image/png"
    docx = await upload(client, ann, conv, "报告.docx", docx_bytes())
    assert docx.status_code == 201, docx.text
    assert docx.json()["content_type"] == (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    )
    md = await upload(client, ann, conv, "README.md", "# 标题\n".encode())
    assert md.json()["content_type"] == "text/markdown"


async def test_empty_file_is_refused(client, make_tenant, services):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    r = await upload(client, ann, conv, "empty.txt", b"", "text/plain")
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_request"
    assert await stored_rows(services) == 0


async def test_message_cannot_reference_a_file_of_another_conversation(client, make_tenant):
    t = await make_tenant()
    ann, bo = await t.user("ann"), await t.user("bo")
    first = await group_of(client, ann, bo, title="first")
    second = await group_of(client, ann, bo, title="second")
    file_id = (await upload(client, ann, first, "a.png", png_bytes(), "image/png")).json()["id"]
    r = await client.post(
        f"/conversations/{second}/messages",
        json={"kind": "image", "file_id": file_id},
        headers=ann.headers,
    )
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


async def test_image_message_needs_an_image_file(client, make_tenant):
    t = await make_tenant()
    ann = await t.user("ann")
    conv = await group_of(client, ann)
    file_id = (await upload(client, ann, conv, "a.pdf", PDF, "application/pdf")).json()["id"]
    image = await client.post(
        f"/conversations/{conv}/messages",
        json={"kind": "image", "file_id": file_id},
        headers=ann.headers,
    )
    assert image.status_code == 400
    as_file = await client.post(
        f"/conversations/{conv}/messages",
        json={"kind": "file", "file_id": file_id},
        headers=ann.headers,
    )
    assert as_file.status_code == 201, as_file.text


@pytest.mark.parametrize(
    "form",
    [
        {"data": {"conversation_id": "x"}},
        {"files": {"file": ("a.txt", b"hello", "text/plain")}},
        {"json": {"conversation_id": "x"}},
        {"data": {"conversation_id": "x", "file": "not a file part"}},
    ],
    ids=["no-file", "no-conversation", "json-body", "file-as-text-field"],
)
async def test_missing_or_malformed_fields_are_a_typed_4xx(client, make_tenant, form):
    t = await make_tenant()
    ann = await t.user("ann")
    r = await client.post("/files", headers=ann.headers, **form)
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"] == "invalid_request"


async def test_upload_needs_authentication(client, make_tenant):
    r = await client.post(
        "/files",
        data={"conversation_id": "x"},
        files={"file": ("a.txt", b"hello", "text/plain")},
    )
    assert r.status_code == 401


async def test_member_removed_while_uploading_gets_404_and_nothing_is_kept(
    client, make_tenant, services, settings
):
    t = await make_tenant()
    ann, bo = await t.user("ann", role="admin"), await t.user("bo")
    conv = await group_of(client, ann, bo)
    bo_principal = await services.auth.authenticate(bo.token, None)
    ann_principal = await services.auth.authenticate(ann.token, None)

    async def body():
        yield b"first part of the upload, "
        # The group's owner removes bo before the last bytes arrive.
        await services.conversations.remove_member(ann_principal, conv, bo.id)
        yield b"the rest"

    with pytest.raises(NotFound):
        await services.files.upload(bo_principal, conv, "late.txt", "text/plain", body())
    assert await stored_rows(services) == 0
    assert stored_paths(settings) == []
