"""GET /v1/torrents and /v1/torrents/{id}: paging without gaps or repeats, filters, problems for bad input."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import attrs
import pytest
from litestar.testing import TestClient

from revaer_core import RuntimeStore, TorrentState
from revaer_core.api.app import create_app
from revaer_core.api.models import public_json
from revaer_core.contract import samples
from revaer_core.query import MAX_PAGE_SIZE
from tests.support.stores import FaultyStore
from tests.support.surfaces import problem, seed_torrents, torrent


def walk(api: TestClient[Any], **params: Any) -> list[str]:
    """Ids of every page of a listing, following next_cursor."""
    ids: list[str] = []
    cursor: str | None = None
    while True:
        response = api.get("/v1/torrents", params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= params.get("limit", 50)
        ids += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.parametrize("sort", ["added", "name", "updated"])
@pytest.mark.parametrize("desc", [False, True])
@pytest.mark.parametrize("limit", [1, 4, 23, 24])
def test_pages_cover_every_torrent_once_in_order(
    api: TestClient[Any], store: RuntimeStore, sort: str, desc: bool, limit: int
) -> None:
    statuses = seed_torrents(store, 23)
    key = {
        "added": lambda s: (s.added_at, s.id),
        "name": lambda s: (s.name or "", s.id),
        "updated": lambda s: (s.last_updated, s.id),
    }[sort]
    expected = [str(s.id) for s in sorted(statuses, key=key, reverse=desc)]
    assert walk(api, sort=sort, desc=desc, limit=limit) == expected


def test_rows_added_while_paging_cause_no_gap_or_repeat(api: TestClient[Any], store: RuntimeStore) -> None:
    before = {str(s.id) for s in seed_torrents(store, 10)}
    first = api.get("/v1/torrents", params={"limit": 4}).json()
    late = [attrs.evolve(torrent(50 + n), added_at=samples.EPOCH - timedelta(days=1)) for n in range(3)]
    store.upsert_torrents(late)  # sort before every page already served
    rest = walk(api, limit=4, cursor=first["next_cursor"])
    seen = [item["id"] for item in first["items"]] + rest
    assert len(seen) == len(set(seen)) == 10
    assert set(seen) == before


def test_state_and_name_filters(api: TestClient[Any], store: RuntimeStore) -> None:
    statuses = seed_torrents(store, 30)
    body = api.get("/v1/torrents", params=[("state", "failed"), ("state", "seeding"), ("limit", 500)]).json()
    wanted = {TorrentState.FAILED, TorrentState.SEEDING}
    assert {item["id"] for item in body["items"]} == {str(s.id) for s in statuses if s.state in wanted}
    assert all(item["state"] in {"failed", "seeding"} for item in body["items"])

    body = api.get("/v1/torrents", params={"name": "UBUNTU", "state": "queued"}).json()
    expected = {str(s.id) for s in statuses if "ubuntu" in (s.name or "").lower() and s.state is TorrentState.QUEUED}
    assert expected and {item["id"] for item in body["items"]} == expected


def test_a_page_and_a_torrent_have_the_shared_json_shape(api: TestClient[Any], store: RuntimeStore) -> None:
    statuses = seed_torrents(store, 3)
    page = api.get("/v1/torrents", params={"limit": 2})
    assert page.headers["content-type"].startswith("application/json")
    assert page.json()["items"] == public_json(statuses[:2])
    one = api.get(f"/v1/torrents/{statuses[1].id}")
    assert one.json() == public_json(statuses[1])
    assert one.json()["added_at"] == statuses[1].added_at.isoformat()


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/v1/torrents/not-a-uuid", 400, "not a torrent id"),
        (f"/v1/torrents/{uuid.UUID(int=42)}", 404, "no torrent with id"),
        ("/v1/torrents?state=sleeping", 400, "'state'"),
        ("/v1/torrents?sort=size", 400, "'sort'"),
        ("/v1/torrents?limit=0", 400, "'limit'"),
        (f"/v1/torrents?limit={MAX_PAGE_SIZE + 1}", 400, "'limit'"),
        ("/v1/torrents?limit=ten", 400, "'limit'"),
        ("/v1/torrents?cursor=bm9wZQ", 400, "cursor"),
        (f"/v1/torrents?name={'x' * 300}", 400, "name search"),
        ("/v1/nothing-here", 404, "Not Found"),
    ],
)
def test_bad_input_is_a_problem_document(api: TestClient[Any], path: str, status: int, words: str) -> None:
    response = api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    problem(body, status)
    assert words in body["detail"]
    assert body["instance"] == path.split("?")[0]


def test_a_cursor_from_another_sort_is_refused(api: TestClient[Any], store: RuntimeStore) -> None:
    seed_torrents(store, 5)
    cursor = api.get("/v1/torrents", params={"sort": "name", "limit": 2}).json()["next_cursor"]
    response = api.get("/v1/torrents", params={"sort": "added", "cursor": cursor})
    assert response.status_code == 400
    assert "sort order" in response.json()["detail"]


def test_the_live_catalog_is_preferred_for_one_torrent(store: RuntimeStore) -> None:
    stored, only_stored = seed_torrents(store, 2)
    live = attrs.evolve(stored, state=TorrentState.SEEDING, name="live name")
    with TestClient(create_app(store, catalog={live.id: live}), base_url="http://127.0.0.1") as api:
        assert api.get(f"/v1/torrents/{live.id}").json()["name"] == "live name"
        assert api.get(f"/v1/torrents/{only_stored.id}").json()["name"] == only_stored.name


@pytest.mark.parametrize("sort", ["added", "name", "updated"])
@pytest.mark.parametrize("desc", [False, True])
def test_a_daemon_lists_its_live_catalog_in_pages_ordered_as_the_store_orders_them(
    store: RuntimeStore, sort: str, desc: bool
) -> None:
    statuses = seed_torrents(store, 23)
    live = {s.id: attrs.evolve(s, state=TorrentState.STOPPED) for s in statuses}
    with TestClient(create_app(store), base_url="http://127.0.0.1") as stored_api:
        from_store = walk(stored_api, sort=sort, desc=desc, limit=5)
    with TestClient(create_app(store, catalog=live), base_url="http://127.0.0.1") as api:
        assert walk(api, sort=sort, desc=desc, limit=5) == from_store
        states = {item["state"] for item in api.get("/v1/torrents", params={"limit": 500}).json()["items"]}
        assert states == {"stopped"}  # the catalog's, not the store's


def test_a_daemon_lists_its_torrents_with_no_store_and_while_the_store_is_down(
    faulty: tuple[RuntimeStore, FaultyStore],
) -> None:
    store, plugin = faulty
    running = {s.id: s for s in seed_torrents(store, 3)}
    plugin.down = True
    with TestClient(create_app(store), base_url="http://127.0.0.1") as stand_alone:
        assert stand_alone.get("/v1/torrents").status_code == 503  # the store is all it has
    for backing in (RuntimeStore.none(), store):
        with TestClient(create_app(backing, catalog=running), base_url="http://127.0.0.1") as api:
            response = api.get("/v1/torrents")
            assert response.status_code == 200, response.text
            assert {item["id"] for item in response.json()["items"]} == {str(i) for i in running}


def test_no_store_answers_empty_and_not_found(tmp_path: object) -> None:
    with TestClient(create_app(RuntimeStore.none()), base_url="http://127.0.0.1") as api:
        assert api.get("/v1/torrents").json() == {"items": [], "next_cursor": None}
        response = api.get(f"/v1/torrents/{uuid.UUID(int=1)}")
        assert response.status_code == 404
        assert "no runtime store selected" in response.json()["detail"]
