"""Media judged by content: the sniffer, and `looks validate` refusing what the API would."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import media
from engine.cli import main
from engine.recipe import load_recipe

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(16)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(16)
MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  "
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm\x42\x87"
MKV = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x88matroska"
TEXT = b"this is not an image, whatever its name says\n"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (MP4, "video/mp4"),
        (WEBM, "video/webm"),
        (MKV, "video/x-matroska"),
        (MOV, "video/quicktime"),
        (b"GIF89a" + bytes(10), "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (TEXT, "text/plain"),
        (b"\x00\x01\x02\x03garbage", None),
        (b"", None),
    ],
)
def test_sniff_names_media_by_their_first_bytes(head: bytes, expected: str | None) -> None:
    assert media.sniff(head) == expected


def test_check_accepts_only_what_the_api_takes() -> None:
    assert media.check(PNG, 100, "image") == media.MediaCheck("image/png")
    assert media.check(JPEG, 100, "image").ok
    assert media.check(WEBM, 100, "video").ok
    assert media.check(MP4, media.DIRECT_UPLOAD_MAX_BYTES, "video").ok  # at the cap
    assert media.check(MP4, 100, "image").problem == "must be a PNG or JPEG image, not video/mp4"
    assert media.check(MOV, 100, "video").problem == (
        "must be an MP4 or WebM video, not video/quicktime"
    )
    assert media.check(b"\x00\x01", 100, "video").problem == (
        "must be an MP4 or WebM video, not unknown bytes"
    )
    assert media.check(PNG, 0, "image").problem == "is empty"
    too_big = media.check(MP4, media.DIRECT_UPLOAD_MAX_BYTES + 1, "video")
    assert (
        too_big.problem
        == f"is {media.DIRECT_UPLOAD_MAX_BYTES + 1} bytes, over the 5.0 GiB an upload may carry"
    )


def recipe(directory: Path, files: dict[str, bytes], base: str, refs: str = "") -> Path:
    for name, data in files.items():
        (directory / name).write_bytes(data)
    text = f"version: 1\navatars:\n  s:\n    name: S\n    base: {base}\n"
    if refs:
        text += f"    looks:\n      a: {{prompt: in a studio, reference_images: [{refs}]}}\n"
    path = directory / "recipe.yaml"
    path.write_text(text)
    return path


def validate(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["validate", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in out
    assert "Traceback" not in err
    return code, err.splitlines()


def test_validate_refuses_a_text_file_named_like_an_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = recipe(tmp_path, {"fake.png": TEXT}, "{type: photo, file: {path: fake.png}}")
    assert validate(path, capsys) == (
        1,
        [
            f"{path}:5: avatars.s.base.file.path: fake.png: must be a PNG or JPEG image,"
            " not text/plain"
        ],
    )


def test_validate_refuses_a_wrong_type_of_twin_video(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"clip.mp4": PNG, "talk.mov": MOV}
    path = recipe(tmp_path, files, "{type: digital_twin, file: {path: clip.mp4}}")
    assert validate(path, capsys) == (
        1,
        [
            f"{path}:5: avatars.s.base.file.path: clip.mp4: must be an MP4 or WebM video,"
            " not image/png"
        ],
    )
    path = recipe(tmp_path, files, "{type: digital_twin, file: {path: talk.mov}}")
    code, lines = validate(path, capsys)
    assert code == 1 and lines == [
        f"{path}:5: avatars.s.base.file.path: talk.mov: must be an MP4 or WebM video,"
        " not video/quicktime"
    ]


def test_validate_refuses_a_fake_reference_image_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {"a.png": PNG, "ref.jpg": TEXT}
    path = recipe(tmp_path, files, "{type: photo, file: {path: a.png}}", "{path: ref.jpg}")
    code, lines = validate(path, capsys)
    assert code == 1
    assert lines == [
        f"{path}:7: avatars.s.looks.a.reference_images.0.path: ref.jpg: must be a PNG or JPEG"
        " image, not text/plain"
    ]


def test_validate_refuses_a_video_over_the_direct_upload_maximum(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as f:  # sparse: no disk, and validate reads only its first bytes
        f.write(MP4)
        f.truncate(media.DIRECT_UPLOAD_MAX_BYTES + 1)
    path = recipe(tmp_path, {}, "{type: digital_twin, file: {path: huge.mp4}}")
    code, [line] = validate(path, capsys)
    assert code == 1
    assert line.startswith(f"{path}:5: avatars.s.base.file.path: huge.mp4: is ")
    assert "over the 5.0 GiB an upload may carry" in line


def test_content_decides_the_media_type_not_the_name(tmp_path: Path) -> None:
    path = recipe(tmp_path, {"photo.png": JPEG}, "{type: photo, file: {path: photo.png}}")
    base = load_recipe(path).avatars[0].base
    assert base.file is not None and base.file.media_type == "image/jpeg"


def test_a_webm_twin_video_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = recipe(tmp_path, {"clip.webm": WEBM}, "{type: digital_twin, file: {path: clip.webm}}")
    assert validate(path, capsys) == (0, [])
