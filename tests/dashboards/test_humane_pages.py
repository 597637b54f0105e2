"""Error pages people can act on, and a failed sign-in that keeps the username (issue 17)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.dashboards.live import csrf_of
from tests.dashboards.seed import World


def test_unknown_address_is_a_page_with_a_way_on_and_json_for_the_api(app_client: httpx.Client) -> None:
    page = app_client.get("/no-such-page")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "We could not find that page" in page.text and 'href="/"' in page.text
    api = app_client.get("/api/no-such-thing")
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/json")


def test_a_refused_page_says_so_in_words_with_navigation(signed_in: Any, world: World) -> None:
    page = signed_in("nurse").get("/billing")
    assert page.status_code == 403
    assert "This page is not open to you" in page.text and "role 'nurse'" not in page.text
    assert 'href="/queue"' in page.text and "Your start page" in page.text


def test_a_wrong_password_keeps_the_username_and_focuses_the_password(
    app_client: httpx.Client, world: World
) -> None:
    name = world.usernames["nurse"]
    form = app_client.get("/login").text
    refused = app_client.post("/login", data={"username": name, "password": "wrong", "next": "/queue",
                                              "csrf_token": csrf_of(form)}, follow_redirects=False)
    assert refused.status_code == 401 and "Unknown user or wrong password." in refused.text
    assert f'name="username" autocomplete="username" required value="{name}"' in refused.text
    assert 'type="password" autocomplete="current-password" required autofocus' in refused.text
    assert 'name="next" value="/queue"' in refused.text
