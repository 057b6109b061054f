"""create-avatar.md replayed against the simulator: every curl example, its answers and errors."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from _simhelpers import (
    KEY,
    create,
    err,
    photo,
    prompt,
    sim_client,
    twin,
    wait_status,
)

from looks import sim

LOOK_KEYS = {"id", "name", "avatar_type", "group_id", "status", "tags"}
GROUP_KEYS = {"id", "name", "looks_count", "consent_status", "created_at"}


@pytest.fixture
def api() -> Iterator[tuple[sim.RunningSimulator, httpx.Client]]:
    with sim_client() as pair:
        yield pair


def _check_shape(data: dict[str, Any], avatar_type: str, name: str) -> None:
    assert set(data) == {"avatar_item", "avatar_group"}
    look, group = data["avatar_item"], data["avatar_group"]
    assert set(look) >= LOOK_KEYS
    assert set(group) >= GROUP_KEYS
    assert look["avatar_type"] == avatar_type
    assert look["name"] == name
    assert look["group_id"] == group["id"]
    assert look["status"] == "processing"
    assert isinstance(group["created_at"], int)


def test_photo_example(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    r = c.post(
        "/v3/avatars",
        json={
            "type": "photo",
            "name": "My Photo Avatar",
            "file": {"type": "url", "url": "https://example.com/headshot.png"},
        },
    )
    assert r.status_code == 200
    assert r.headers["x-request-id"]
    data = r.json()["data"]
    _check_shape(data, "photo_avatar", "My Photo Avatar")
    assert data["avatar_group"]["consent_status"] is None
    assert data["avatar_group"]["looks_count"] == 1
    # Not usable before generation ends.
    assert "preview_image_url" not in data["avatar_item"]


def test_prompt_example_completes_with_a_real_preview(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    data = create(
        c,
        {
            "type": "prompt",
            "name": "Space Commander",
            "prompt": "Young woman, early 30s, confident expression, short silver hair, warm "
            "brown eyes, wearing a dark blue space suit with mission patches, standing in a "
            "modern spacecraft bridge with holographic displays",
        },
    )
    _check_shape(data, "studio_avatar", "Space Commander")
    look = wait_status(c, data["avatar_item"]["id"], "completed")
    assert look["supported_api_engines"]
    assert look["image_width"] > 0 and look["image_height"] > 0
    # The preview is absolute, needs no key and is a real PNG of the stated size.
    png = httpx.get(look["preview_image_url"])
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png.content[16:24])
    assert (width, height) == (look["image_width"], look["image_height"])


def test_previews_differ_per_look(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    ids = [create(c, prompt(f"p{i}"))["avatar_item"]["id"] for i in range(2)]
    urls = [wait_status(c, i, "completed")["preview_image_url"] for i in ids]
    assert httpx.get(urls[0]).content != httpx.get(urls[1]).content


def test_digital_twin_example(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    data = create(
        c,
        {
            "type": "digital_twin",
            "name": "My Digital Twin",
            "file": {"type": "url", "url": "https://example.com/training-footage.mp4"},
        },
    )
    assert data["avatar_item"]["avatar_type"] == "digital_twin"
    assert data["avatar_item"]["status"] == "pending_consent"
    assert data["avatar_group"]["consent_status"] == "pending"


def test_sarah_sequence_photo_then_prompt_with_avatar_id(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    base = create(
        c,
        {
            "type": "photo",
            "name": "Sarah",
            "file": {"type": "url", "url": "https://example.com/sarah-headshot.png"},
        },
    )
    look_id, group_id = base["avatar_item"]["id"], base["avatar_group"]["id"]
    wait_status(c, look_id, "completed")
    new_ids = []
    for outfit in ("Navy Blazer Office", "Red Dress Gala"):
        data = create(
            c,
            {
                "type": "prompt",
                "name": f"Sarah — {outfit}",
                "prompt": "Wearing a navy blazer, modern office background with plants, warm "
                "natural light",
                "avatar_id": look_id,
            },
        )
        assert data["avatar_item"]["id"] != look_id
        assert data["avatar_item"]["group_id"] == group_id
        assert data["avatar_group"]["id"] == group_id
        new_ids.append(data["avatar_item"]["id"])
    assert c.get(f"/v3/avatars/{group_id}").json()["data"]["looks_count"] == 3
    listed = c.get("/v3/avatars/looks", params={"group_id": group_id}).json()
    assert [look["id"] for look in listed["data"]] == [look_id, *new_ids]


def test_reference_images_example(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    base = create(c, photo("Sarah"))
    look_id = base["avatar_item"]["id"]
    wait_status(c, look_id, "completed")
    data = create(
        c,
        {
            "type": "prompt",
            "name": "Brand Ambassador — Plant Studio",
            "prompt": "Professional woman in her 40s, warm smile, wearing a navy blazer, modern "
            "office background with plants",
            "avatar_id": look_id,
            "reference_images": [
                {"type": "url", "url": "https://example.com/style-reference.png"},
                {"type": "url", "url": "https://example.com/setting-reference.jpg"},
            ],
        },
    )
    assert data["avatar_group"]["id"] == base["avatar_group"]["id"]


def test_reference_images_alone_make_a_new_group(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nxx").decode()
    body = prompt(reference_images=[{"type": "base64", "media_type": "image/png", "data": png}])
    data = create(c, body)
    assert data["avatar_group"]["looks_count"] == 1


def test_avatar_group_id_only_saves_there(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    first = create(c, photo("Sarah"))
    group_id = first["avatar_group"]["id"]
    # June 2026: no completed look is needed, the group is only where the result is saved.
    data = create(c, prompt("Sarah 2", avatar_group_id=group_id))
    assert data["avatar_group"]["id"] == group_id
    assert data["avatar_group"]["name"] == "Sarah"
    assert data["avatar_group"]["looks_count"] == 2


def test_avatar_id_with_its_own_group(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    base = create(c, photo("Sarah"))
    look_id, group_id = base["avatar_item"]["id"], base["avatar_group"]["id"]
    wait_status(c, look_id, "completed")
    data = create(c, prompt(avatar_id=look_id, avatar_group_id=group_id))
    assert data["avatar_group"]["id"] == group_id


def test_documented_errors(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    # avatar_id not found
    r = c.post("/v3/avatars", json=prompt(avatar_id="look_nope"))
    assert r.status_code == 404
    assert err(r)["code"] == "AVATAR_NOT_FOUND"
    # avatar_id exists but has no usable image (still processing)
    base = create(c, photo("Sarah"))
    r = c.post("/v3/avatars", json=prompt(avatar_id=base["avatar_item"]["id"]))
    assert r.status_code == 400
    assert err(r) | {"message": ""} == {
        "code": "INVALID_PARAMETER",
        "message": "",
        "param": "avatar_id",
    }
    # avatar_id does not belong to avatar_group_id
    wait_status(c, base["avatar_item"]["id"], "completed")
    other = create(c, photo("Other"))
    r = c.post(
        "/v3/avatars",
        json=prompt(
            avatar_id=base["avatar_item"]["id"], avatar_group_id=other["avatar_group"]["id"]
        ),
    )
    assert r.status_code == 400
    assert err(r)["code"] == "INVALID_PARAMETER"
    assert len(c.get("/v3/avatars/looks").json()["data"]) == 2


def test_failed_look_is_not_usable_as_avatar_id() -> None:
    config = sim.SimConfig(generation_seconds=0.05, failed_look_rate=1.0, seed=3)
    with sim_client(config) as (_, c):
        look_id = create(c, photo())["avatar_item"]["id"]
        look = wait_status(c, look_id, "failed")
        assert set(look["error"]) == {"code", "message"}
        assert "preview_image_url" not in look
        assert httpx.get(f"{c.base_url}/_sim/previews/{look_id}.png").status_code == 404
        r = c.post("/v3/avatars", json=prompt(avatar_id=look_id))
        assert (r.status_code, err(r)["code"]) == (400, "INVALID_PARAMETER")


def test_unknown_avatar_group_id(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    r = c.post("/v3/avatars", json=photo(avatar_group_id="group_nope"))
    assert (r.status_code, err(r)["code"]) == (404, "not_found")


@pytest.mark.parametrize(
    ("headers", "config"),
    [
        ({}, sim.SimConfig()),
        ({"X-Api-Key": ""}, sim.SimConfig()),
        ({"X-Api-Key": "wrong"}, sim.SimConfig(api_key="right")),
    ],
)
def test_unauthorized(headers: dict[str, str], config: sim.SimConfig) -> None:
    with sim.running_simulator(config) as s:
        r = httpx.post(f"{s.base_url}/v3/avatars", json=photo(), headers=headers)
        assert r.status_code == 401
        assert err(r)["code"] == "unauthorized"
        assert r.headers["x-request-id"]
        assert s.state()["looks"] == []


def test_configured_key_is_accepted() -> None:
    with sim_client(sim.SimConfig(api_key=KEY)) as (_, c):
        assert c.get("/v3/avatars").status_code == 200


def _url(u: str) -> dict[str, str]:
    return {"type": "url", "url": u}


BAD = [
    (prompt(prompt="x" * 1001), "prompt"),
    (prompt(reference_images=[_url("https://e.com/a.png")] * 4), "reference_images"),
    (prompt(reference_images="https://e.com/a.png"), "reference_images"),
    (prompt(reference_images=[_url("https://e.com/a.mp4")]), "reference_images[0].url"),
    ({"type": "prompt", "name": "n"}, "prompt"),
    ({"type": "prompt", "prompt": "p"}, "name"),
    (prompt(name=""), "name"),
    ({**prompt(), "name": 5}, "name"),
    (prompt(prompt=["a"]), "prompt"),
    (prompt(avatar_id=7), "avatar_id"),
    ({"name": "n", "prompt": "p"}, "type"),
    (prompt(type="selfie"), "type"),
    (prompt(file=_url("https://e.com/a.png")), "file"),
    ({"type": "photo", "name": "n"}, "file"),
    (photo(file="https://e.com/a.png"), "file"),
    (photo(file={"url": "https://e.com/a.png"}), "file.type"),
    (photo(file={"type": "link", "url": "https://e.com/a.png"}), "file.type"),
    (photo(file={"type": "url", "url": "ftp://e.com/a.png"}), "file.url"),
    (photo(file={"type": "url", "url": "not a url"}), "file.url"),
    (photo(file={"type": "url"}), "file.url"),
    (photo(file={"type": "url", "url": "https://e.com/a.png", "x": 1}), "file.x"),
    (photo(file=_url("https://e.com/clip.mp4")), "file.url"),
    (twin(file=_url("https://e.com/face.png")), "file.url"),
    (photo(file={"type": "asset_id", "asset_id": "asset_nope"}), "file.asset_id"),
    (photo(file={"type": "base64", "media_type": "image/png", "data": "%%%"}), "file.data"),
    (photo(file={"type": "base64", "media_type": "image/png", "data": ""}), "file.data"),
    (photo(file={"type": "base64", "media_type": "video/mp4", "data": "AAAA"}), "file.media_type"),
    (twin(file={"type": "base64", "media_type": "image/png", "data": "AAAA"}), "file.media_type"),
    (photo(prompt="p"), "prompt"),
    (photo(avatar_group_id=""), "avatar_group_id"),
]


@pytest.mark.parametrize(("body", "param"), BAD, ids=[p for _, p in BAD])
def test_validation(
    api: tuple[sim.RunningSimulator, httpx.Client], body: dict[str, Any], param: str
) -> None:
    s, c = api
    r = c.post("/v3/avatars", json=body)
    assert r.status_code == 400, r.text
    assert err(r)["code"] == "invalid_parameter"
    assert err(r)["param"] == param
    assert s.state() == {"groups": [], "looks": []}


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b""])
def test_body_must_be_a_json_object(
    api: tuple[sim.RunningSimulator, httpx.Client], raw: bytes
) -> None:
    _, c = api
    r = c.post("/v3/avatars", content=raw, headers={"Content-Type": "application/json"})
    assert (r.status_code, err(r)["code"]) == (400, "invalid_parameter")


def test_prompt_of_exactly_1000_chars_and_3_images(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    refs = [_url("https://e.com/a.png"), _url("https://e.com/b"), _url("https://e.com/c.webp")]
    create(c, prompt(prompt="x" * 1000, reference_images=refs))


def test_file_by_base64_and_asset(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    s, c = api
    data = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(500)).decode()
    create(c, photo(file={"type": "base64", "media_type": "image/png", "data": data}))
    video = c.post("/v3/assets", files={"file": ("t.mp4", b"\0\0\0\x18ftypmp42", "video/mp4")})
    asset_id = video.json()["data"]["asset_id"]
    create(c, twin(file={"type": "asset_id", "asset_id": asset_id}))
    # A video asset is no photo.
    r = c.post("/v3/avatars", json=photo(file={"type": "asset_id", "asset_id": asset_id}))
    assert (r.status_code, err(r)["param"]) == (400, "file.asset_id")
    # Assets belong to the key that uploaded them.
    other = httpx.post(
        f"{s.base_url}/v3/avatars",
        json=twin(file={"type": "asset_id", "asset_id": asset_id}),
        headers={"X-Api-Key": "someone-else"},
    )
    assert (other.status_code, err(other)["param"]) == (400, "file.asset_id")
    # /_sim/state keeps the base64 payload small.
    first = s.state()["looks"][0]["request"]["file"]["data"]
    assert first["length"] == len(data) and len(first["sha256"]) == 64


def test_keys_see_only_their_own_avatars(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    s, c = api
    look_id = create(c, photo())["avatar_item"]["id"]
    other = httpx.Client(base_url=s.base_url, headers={"X-Api-Key": "other"})
    assert other.get(f"/v3/avatars/looks/{look_id}").status_code == 404
    assert other.get("/v3/avatars").json()["data"] == []
    r = other.post("/v3/avatars", json=prompt(avatar_id=look_id))
    assert err(r)["code"] == "AVATAR_NOT_FOUND"


def test_generation_seconds_is_respected() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.3)) as (_, c):
        look_id = create(c, photo())["avatar_item"]["id"]
        assert c.get(f"/v3/avatars/looks/{look_id}").json()["data"]["status"] == "processing"
        assert wait_status(c, look_id, "completed")["status"] == "completed"
