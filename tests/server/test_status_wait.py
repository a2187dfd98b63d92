"""A status long-poll is woken by its job's change (from whatever thread made it), not by a
timer."""

from __future__ import annotations

import asyncio
import threading
import time

from server_helpers import job_body, noise_volume

import medview.server.waiters as waiters_mod
from medview.server.waiters import Waiters

GAMMA = {"steps": [{"step": "enhance.gamma", "params": {"gamma": 0.7}}]}


def test_a_change_made_in_another_thread_wakes_the_waiting_request(monkeypatch):
    monkeypatch.setattr(waiters_mod, "RECHECK_S", 600.0)  # only the event can end the wait
    w = Waiters()

    async def main():
        w.bind(asyncio.get_running_loop())
        with w.watch("job-a") as a, w.watch("job-b") as b:
            threading.Thread(target=w.notify, args=("job-a",)).start()
            await asyncio.wait_for(w.wait(a, 600.0), 30)
            assert a.is_set() and not b.is_set()  # only that job's requests
        assert w._events == {}  # nothing kept once the requests are answered
        w.notify("job-a")  # nobody waits: nothing happens

    asyncio.run(main())


def test_the_status_answers_when_the_job_ends_not_at_its_deadline(make_client, monkeypatch):
    monkeypatch.setattr(waiters_mod, "RECHECK_S", 600.0)  # no look on a timer
    http = make_client()
    job = http.post("/api/v1/jobs", content=job_body(GAMMA, noise_volume((8, 128, 128))))
    assert job.status_code == 201
    t0 = time.monotonic()
    st = http.get(f"/api/v1/jobs/{job.json()['id']}", params={"wait": 10}).json()
    took = time.monotonic() - t0
    assert st["state"] == "succeeded"
    # the job takes about a second; without the wake-up the answer came at the 10 s deadline
    assert took < 8, took
