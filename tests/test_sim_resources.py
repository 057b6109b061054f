"""Lists, looks and groups, consent, assets, introspection, persistence and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from _simhelpers import KEY, PNG_1PX, create, err, photo, prompt, sim_client, twin, wait_status

from looks import sim
from looks.errors import UsageError
from looks.sim import _api

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def api() -> Iterator[tuple[sim.RunningSimulator, httpx.Client]]:
    with sim_client() as pair:
        yield pair


# ----- lists -----


def test_pagination_over_more_than_50_looks() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.05, max_jobs=100)) as (_, c):
        _paginate(c)


def _paginate(c: httpx.Client) -> None:
    group_id = create(c, prompt("g"))["avatar_group"]["id"]
    ids = [c.get("/v3/avatars/looks").json()["data"][0]["id"]]
    for i in range(59):
        ids.append(create(c, prompt(f"p{i}", avatar_group_id=group_id))["avatar_item"]["id"])
    for params in ({}, {"group_id": group_id}):
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            query = {**params, "limit": "50"} | ({"token": token} if token else {})
            body = c.get("/v3/avatars/looks", params=query).json()
            assert set(body) == {"data", "has_more", "next_token"}
            seen += [look["id"] for look in body["data"]]
            pages += 1
            if not body["has_more"]:
                assert body["next_token"] is None
                break
            token = body["next_token"]
        assert (seen, pages) == (ids, 2)
    default = c.get("/v3/avatars/looks").json()
    assert len(default["data"]) == 20 and default["has_more"] is True


def test_group_list_pagination_and_stable_order(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    groups = [create(c, photo(f"g{i}"))["avatar_group"]["id"] for i in range(5)]
    first = c.get("/v3/avatars", params={"limit": 2}).json()
    assert [g["id"] for g in first["data"]] == groups[:2]
    # Deleting an already-listed group does not shift the next page.
    c.delete(f"/v3/avatars/{groups[0]}")
    rest = c.get("/v3/avatars", params={"limit": 50, "token": first["next_token"]}).json()
    assert [g["id"] for g in rest["data"]] == groups[2:]
    assert rest["has_more"] is False


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "51"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"limit": "-1"}, "limit"),
        ({"token": "garbage!"}, "token"),
        ({"avatar_type": "cartoon"}, "avatar_type"),
    ],
)
def test_list_parameter_errors(
    api: tuple[sim.RunningSimulator, httpx.Client], params: dict[str, str], param: str
) -> None:
    _, c = api
    r = c.get("/v3/avatars/looks", params=params)
    assert (r.status_code, err(r)["code"], err(r)["param"]) == (400, "invalid_parameter", param)


def test_token_of_another_listing_is_rejected(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    for i in range(3):
        create(c, photo(f"g{i}"))
    token = c.get("/v3/avatars", params={"limit": 1}).json()["next_token"]
    r = c.get("/v3/avatars/looks", params={"token": token})
    assert (r.status_code, err(r)["param"]) == (400, "token")


def test_look_filters(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    p = create(c, photo())
    create(c, prompt(avatar_group_id=p["avatar_group"]["id"]))
    create(c, twin())
    by_type = c.get("/v3/avatars/looks", params={"avatar_type": "studio_avatar"}).json()["data"]
    assert [look["avatar_type"] for look in by_type] == ["studio_avatar"]
    by_group = c.get("/v3/avatars/looks", params={"group_id": p["avatar_group"]["id"]}).json()
    assert len(by_group["data"]) == 2
    unknown = c.get("/v3/avatars/looks", params={"group_id": "group_nope"}).json()
    assert unknown == {"data": [], "has_more": False, "next_token": None}


# ----- single resources -----


def test_get_patch_delete_look_and_group(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    s, c = api
    first = create(c, photo("Sarah"))
    group_id, look_id = first["avatar_group"]["id"], first["avatar_item"]["id"]
    second = create(c, prompt("Sarah 2", avatar_group_id=group_id))["avatar_item"]["id"]

    group = c.get(f"/v3/avatars/{group_id}").json()["data"]
    assert (group["id"], group["looks_count"], group["consent_status"]) == (group_id, 2, None)

    renamed = c.patch(f"/v3/avatars/looks/{look_id}", json={"name": "Sarah HQ"})
    assert renamed.json()["data"]["name"] == "Sarah HQ"
    assert c.get(f"/v3/avatars/looks/{look_id}").json()["data"]["name"] == "Sarah HQ"
    for bad in ({}, {"name": ""}, {"name": 3}, {"name": "x", "tags": []}):
        assert c.patch(f"/v3/avatars/looks/{look_id}", json=bad).status_code == 400

    assert c.delete(f"/v3/avatars/looks/{look_id}").json() == {"data": {"id": look_id}}
    assert c.get(f"/v3/avatars/{group_id}").json()["data"]["looks_count"] == 1
    # Deleting the group's last look deletes the group.
    c.delete(f"/v3/avatars/looks/{second}")
    assert c.get(f"/v3/avatars/{group_id}").status_code == 404
    assert s.state() == {"groups": [], "looks": []}


def test_delete_group_deletes_its_looks(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    s, c = api
    first = create(c, photo())
    group_id = first["avatar_group"]["id"]
    create(c, prompt(avatar_group_id=group_id))
    keep = create(c, photo("other"))
    assert c.delete(f"/v3/avatars/{group_id}").json() == {"data": {"id": group_id}}
    assert c.get(f"/v3/avatars/looks/{first['avatar_item']['id']}").status_code == 404
    state = s.state()
    assert [look["id"] for look in state["looks"]] == [keep["avatar_item"]["id"]]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v3/avatars/group_nope", 404, "not_found"),
        ("DELETE", "/v3/avatars/group_nope", 404, "not_found"),
        ("GET", "/v3/avatars/looks/look_nope", 404, "not_found"),
        ("PATCH", "/v3/avatars/looks/look_nope", 404, "not_found"),
        ("DELETE", "/v3/avatars/looks/look_nope", 404, "not_found"),
        ("POST", "/v3/avatars/group_nope/consent", 404, "not_found"),
        ("GET", "/v3/videos", 404, "not_found"),
        ("GET", "/v3/avatars/a/b/c", 404, "not_found"),
        ("PUT", "/v3/avatars", 405, "method_not_allowed"),
        ("DELETE", "/v3/avatars/looks", 405, "method_not_allowed"),
        ("GET", "/v3/assets", 405, "method_not_allowed"),
    ],
)
def test_unknown_ids_routes_and_methods(
    api: tuple[sim.RunningSimulator, httpx.Client], method: str, path: str, status: int, code: str
) -> None:
    _, c = api
    r = c.request(method, path, json={"name": "x"} if method == "PATCH" else None)
    assert (r.status_code, err(r)["code"]) == (status, code)
    assert r.headers["x-request-id"]


# ----- consent -----


def test_consent_flow_by_the_page(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    data = create(c, twin())
    group_id, look_id = data["avatar_group"]["id"], data["avatar_item"]["id"]
    r = c.post(
        f"/v3/avatars/{group_id}/consent", json={"reroute_url": "https://heygen.com/consent-done"}
    )
    assert r.status_code == 200
    body = r.json()["data"]
    assert set(body) == {"avatar_group", "url"}
    assert body["avatar_group"]["consent_status"] == "pending"
    assert body["url"].startswith(str(c.base_url).rstrip("/") + "/_sim/consent/")
    # Still waiting for the subject.
    time.sleep(0.15)
    assert c.get(f"/v3/avatars/looks/{look_id}").json()["data"]["status"] == "pending_consent"
    # The page needs no key and offers an Approve button that POSTs a form.
    page = httpx.get(body["url"])
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'method="post"' in page.text and "Approve" in page.text
    approved = httpx.post(body["url"], data={"decision": "approve"})
    assert approved.status_code == 303
    assert approved.headers["location"] == "https://heygen.com/consent-done"
    assert c.get(f"/v3/avatars/{group_id}").json()["data"]["consent_status"] == "approved"
    assert c.get(f"/v3/avatars/looks/{look_id}").json()["data"]["status"] == "processing"
    assert wait_status(c, look_id, "completed")["status"] == "completed"


def test_consent_without_reroute_shows_a_page(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    group_id = create(c, twin())["avatar_group"]["id"]
    url = c.post(f"/v3/avatars/{group_id}/consent").json()["data"]["url"]
    done = httpx.post(url)
    assert done.status_code == 200 and "approved" in done.text
    # A twin added to an approved group needs no new consent.
    more = create(c, twin("again", avatar_group_id=group_id))
    assert more["avatar_item"]["status"] == "processing"


def test_auto_consent() -> None:
    with sim_client(sim.SimConfig(generation_seconds=0.1, auto_consent=0.2)) as (_, c):
        data = create(c, twin())
        group_id, look_id = data["avatar_group"]["id"], data["avatar_item"]["id"]
        # The timer starts with the consent flow, not with the create.
        time.sleep(0.3)
        assert c.get(f"/v3/avatars/{group_id}").json()["data"]["consent_status"] == "pending"
        c.post(f"/v3/avatars/{group_id}/consent", json={})
        assert wait_status(c, look_id, "completed")["status"] == "completed"
        assert c.get(f"/v3/avatars/{group_id}").json()["data"]["consent_status"] == "approved"


@pytest.mark.parametrize("body", [{"reroute_url": "javascript:x"}, {"reroute_url": 1}, {"x": 1}])
def test_consent_validation(api: tuple[sim.RunningSimulator, httpx.Client], body: object) -> None:
    _, c = api
    group_id = create(c, twin())["avatar_group"]["id"]
    r = c.post(f"/v3/avatars/{group_id}/consent", json=body)
    assert (r.status_code, err(r)["code"]) == (400, "invalid_parameter")


def test_consent_on_a_group_that_needs_none(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    _, c = api
    group_id = create(c, photo())["avatar_group"]["id"]
    r = c.post(f"/v3/avatars/{group_id}/consent", json={})
    assert (r.status_code, err(r)["code"]) == (400, "invalid_parameter")


def test_consent_is_idempotent(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    group_id = create(c, twin())["avatar_group"]["id"]
    a = c.post(f"/v3/avatars/{group_id}/consent", headers={"Idempotency-Key": "c1"})
    b = c.post(f"/v3/avatars/{group_id}/consent", headers={"Idempotency-Key": "c1"})
    assert a.json() == b.json()


# ----- assets -----


def test_asset_upload(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    r = c.post("/v3/assets", files={"file": ("face.png", PNG_1PX, "image/png")})
    assert r.status_code == 200
    data = r.json()["data"]
    assert set(data) == {"asset_id", "url", "mime_type", "size_bytes"}
    assert (data["mime_type"], data["size_bytes"]) == ("image/png", len(PNG_1PX))
    assert httpx.get(data["url"]).content == PNG_1PX
    create(c, photo(file={"type": "asset_id", "asset_id": data["asset_id"]}))


def test_asset_type_from_magic_bytes(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    sniffed = c.post(
        "/v3/assets", files={"file": ("blob", b"\xff\xd8\xff\xe0" + bytes(20), "application/x")}
    )
    assert sniffed.json()["data"]["mime_type"] == "image/jpeg"
    webm = c.post("/v3/assets", files={"file": ("v", b"\x1a\x45\xdf\xa3" + bytes(9))})
    assert webm.json()["data"]["mime_type"] == "video/webm"


@pytest.mark.parametrize(
    ("files", "param"),
    [
        ({"file": ("a.txt", b"hello", "text/plain")}, "file"),
        ({"file": ("a.gif", b"GIF89a....", "image/gif")}, "file"),
        ({"other": ("a.png", PNG_1PX, "image/png")}, "file"),
        ({"file": ("a.png", b"", "image/png")}, "file"),
    ],
)
def test_asset_rejections(
    api: tuple[sim.RunningSimulator, httpx.Client],
    files: dict[str, tuple[str, bytes, str]],
    param: str,
) -> None:
    _, c = api
    r = c.post("/v3/assets", files=files)
    assert (r.status_code, err(r)["code"], err(r)["param"]) == (400, "invalid_parameter", param)


def test_asset_needs_multipart(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    r = c.post("/v3/assets", json={"file": "x"})
    assert (r.status_code, err(r)["code"]) == (400, "invalid_parameter")


def test_asset_413_above_the_cap(
    api: tuple[sim.RunningSimulator, httpx.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, c = api
    monkeypatch.setattr(_api, "MAX_UPLOAD_BYTES", 1000)
    ok = c.post("/v3/assets", files={"file": ("a.png", PNG_1PX + bytes(1000 - len(PNG_1PX)))})
    assert ok.status_code == 200
    r = c.post("/v3/assets", files={"file": ("a.png", PNG_1PX + bytes(1001 - len(PNG_1PX)))})
    assert (r.status_code, err(r)["code"]) == (413, "payload_too_large")


def test_asset_413_at_the_real_32_mb_cap(api: tuple[sim.RunningSimulator, httpx.Client]) -> None:
    _, c = api
    data = PNG_1PX + bytes(32 * 1024 * 1024 + 1 - len(PNG_1PX))
    r = c.post("/v3/assets", files={"file": ("big.png", data, "image/png")})
    assert (r.status_code, err(r)["code"]) == (413, "payload_too_large")


# ----- introspection, persistence, CLI -----


def test_stats_count_v3_requests_by_route_template(
    api: tuple[sim.RunningSimulator, httpx.Client],
) -> None:
    s, c = api
    look_id = create(c, photo())["avatar_item"]["id"]
    c.get(f"/v3/avatars/looks/{look_id}")
    c.get("/v3/avatars/looks/look_nope")
    c.get("/v3/avatars/looks", params={"group_id": "g"})
    httpx.get(f"{s.base_url}/v3/avatars")  # no key
    s.state()
    stats = s.stats()
    assert stats["requests"] == 5
    assert stats["by_route"] == {
        "POST /v3/avatars": 1,
        "GET /v3/avatars/looks/{look_id}": 2,
        "GET /v3/avatars/looks": 1,
        "GET /v3/avatars": 1,
    }
    assert stats["by_status"] == {"200": 3, "404": 1, "401": 1}
    assert stats["max_jobs_in_flight"] == 1
    s.reset()
    assert s.stats()["requests"] == 0
    assert s.state() == {"groups": [], "looks": []}


def test_state_file_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sim-state.json"
    config = sim.SimConfig(generation_seconds=0.05, state_file=path, credits=5)
    with sim_client(config) as (_, c):
        first = create(c, photo(), **{"Idempotency-Key": "persist"})
        look_id = first["avatar_item"]["id"]
        create(c, twin())
    assert path.exists()
    assert KEY not in path.read_text()  # only a digest of the API key is kept
    assert path.stat().st_mode & 0o777 == 0o600  # the account's data: the owner's alone
    with sim_client(config) as (s, c):
        state = s.state()
        assert len(state["looks"]) == 2 and len(state["groups"]) == 2
        assert wait_status(c, look_id, "completed")["status"] == "completed"
        replay = c.post("/v3/avatars", json=photo(), headers={"Idempotency-Key": "persist"})
        assert replay.json()["data"]["avatar_item"]["id"] == look_id
        assert s.stats()["credits_remaining"] == 3
        # New ids never collide with restored ones.
        again = create(c, photo())["avatar_item"]["id"]
        assert again not in {look["id"] for look in state["looks"]}


def test_state_file_garbage_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(UsageError, match="cannot load state file"):
        sim.Simulator(sim.SimConfig(state_file=path))


def test_non_loopback_host_is_refused() -> None:
    with pytest.raises(UsageError, match="loopback"), sim.running_simulator(host="0.0.0.0"):
        pass


def test_looks_sim_command(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    state = tmp_path / "s.json"
    cmd = [sys.executable, "-m", "looks.cli", "sim", "--port", "0", "--state", str(state)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("HEYGEN_BASE_URL=http://127.0.0.1:")
        base = line.split("=", 1)[1]
        r = httpx.post(f"{base}/v3/avatars", json=photo(), headers={"X-Api-Key": "k"})
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(json.loads(state.read_text())["looks"]) == 1
