"""The event stream announces a flag inserted after the page was rendered, without patient data."""

from __future__ import annotations

import json
import queue
import re
import threading
from typing import Any

import httpx
import psycopg

from dashboards.auth import SESSION_COOKIE
from tests.dashboards.seed import World, add_flag
from tests.waiting import wait_for


def test_new_flag_is_delivered_over_sse(signed_in: Any, world: World, db: psycopg.Connection[Any]) -> None:
    client: httpx.Client = signed_in("nurse")
    page = client.get("/queue").text
    last = int(page.split('data-last-flag-id="', 1)[1].split('"', 1)[0])
    assert last == world.flag_id
    lines: queue.Queue[str] = queue.Queue()
    stop = threading.Event()
    cookies = {SESSION_COOKIE: client.cookies[SESSION_COOKIE]}

    def listen() -> None:
        with httpx.Client(base_url=str(client.base_url), cookies=cookies, timeout=30) as c, \
                c.stream("GET", "/events/flags", params={"after": last}) as r:
            lines.put(f"status {r.status_code} {r.headers['content-type']}")
            for line in r.iter_lines():
                lines.put(line)
                if stop.is_set():
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    opened = wait_for(lambda: lines.get(timeout=5), 10, "stream to open")
    assert opened.startswith("status 200 text/event-stream")
    new_id = add_flag(db, world, severity="critical", rule_id="glucose_hypo_l2")
    seen: list[str] = []

    def got_flag() -> dict[str, Any] | None:
        while not lines.empty():
            seen.append(lines.get_nowait())
        data = [json.loads(x[5:]) for x in seen if x.startswith("data:") and x != "data: {}"]
        return next((d for d in data if d["flag_id"] == new_id), None)

    event = wait_for(got_flag, 10, "the new flag on the event stream")
    assert event is not None
    assert (event["severity"], event["rule_id"], event["state"]) == ("critical", "glucose_hypo_l2", "open")
    # The status line's time: the clinic's wall clock with its zone (default New York), and UTC.
    assert re.fullmatch(r"\d\d:\d\d E[SD]T", event["opened_local"]), event
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", event["opened_utc"]), event
    assert world.patient_name not in "\n".join(seen)  # ids and severity only: no PHI on the stream
    assert f"id: {new_id}" in seen
    stop.set()
    add_flag(db, world, severity="info", rule_id="wake")  # one more event lets the reader notice `stop`
    thread.join(timeout=10)
    assert not thread.is_alive()
