"""Benchmark: server time per participant page under 50 concurrent virtual participants.

A real server process (production settings, SQLite by default, or PostgreSQL with
DATABASE_URL) on 127.0.0.1; each virtual participant walks the journey as a browser without
JavaScript would: front door, screening, account, consent, baseline questionnaire,
randomization outcome, their page; in the chat arm also booking a course, their sessions and
their chat list. Server time per page comes from the server's own access
log (time inside Django, as the server measures it); client latency is reported beside it.

Prints one JSON object. Goal (issue 7): p99 server time under 100 ms for every page.
Run: .venv/bin/python bench/journey.py [--participants 50] [--seconds 60]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.http_client import Browserish  # noqa: E402
from tests.server import running_server  # noqa: E402

DEMO_PROTOCOL = ROOT / "src" / "stopcsam" / "study" / "protocols" / "demo.yaml"
SCREENING = {"age": "30", "recent_use": "yes", "language": "en", "in_treatment": "no"}
BASELINE = {
    "urge": {"urge_strength": "2", "urge_days": "3"},
    "selfefficacy": {"se_resist": "3", "se_help": "4", "se_lost": "1"},
    "wellbeing": {
        "wb_mood": "2",
        "wb_calm": "1",
        "wb_sleep": "2",
        "wb_note": "I am worried about my urges",
    },
}
SEED_STAFF = (
    "from stopcsam.accounts.demo_data import seed_demo; seed_demo(); "
    "from stopcsam.scheduling.demo import seed_scheduling_demo; seed_scheduling_demo()"
)
ACCESS = re.compile(r"stopcsam\.access (GET|POST) (\S+) (\d{3}) ([\d.]+)ms")


def _page_name(method: str, path: str) -> str:
    path = re.sub(r"^/[a-z]{2}/", "/<lang>/", path)
    return f"{method} {path}"


def journey(
    client: Browserish,
    latencies: dict[str, list[float]],
    think: Callable[[], None] = lambda: None,
    sizes: dict[str, int] | None = None,
) -> None:
    def timed(method: str, path: str, form: dict[str, str] | None = None) -> tuple[int, str, str]:
        think()
        started = time.perf_counter()
        result = client.request(method, path, form)
        latencies[_page_name(method, path)].append((time.perf_counter() - started) * 1000)
        if sizes is not None:  # the document as sent, before compression
            page = _page_name(method, path)
            sizes[page] = max(sizes.get(page, 0), len(result[1].encode()))
        return result

    timed("GET", "/en/")
    token = client.csrf_token("/en/study/screening/")
    timed("POST", "/en/study/screening/", {"csrfmiddlewaretoken": token, **SCREENING})
    timed("GET", "/en/study/eligible/")
    token = client.csrf_token("/en/start/")
    timed(
        "POST", "/en/start/?next=/en/study/enrol/", {"csrfmiddlewaretoken": token, "language": "en"}
    )
    timed("GET", "/en/study/enrol/")
    _status, html, _ = timed("GET", "/en/study/consent/")
    items = re.findall(r'name="(item_\w+)"', html)
    shown = re.search(r'name="shown" value="([0-9a-f]+)"', html)
    token = _token(html)
    timed(
        "POST",
        "/en/study/consent/",
        {
            "csrfmiddlewaretoken": token,
            "shown": shown.group(1) if shown else "",
            **dict.fromkeys(items, "on"),
        },
    )
    timed("GET", "/en/study/")
    for name, answers in BASELINE.items():
        path = f"/en/study/questionnaire/baseline/{name}/"
        _status, html, _ = timed("GET", path)
        timed("POST", path, {"csrfmiddlewaretoken": _token(html), **answers})
    timed("GET", "/en/study/allocation/")
    _status, home, _ = timed("GET", "/en/study/")
    if "/en/sessions/book/" in home:  # the chat arm books its course, then looks at its chat
        _book(timed)


def _book(timed: Callable[..., tuple[int, str, str]]) -> None:
    _status, html, _ = timed("GET", "/en/sessions/book/")
    starts = re.findall(r'name="start" value="(\d+)"', html)
    if not starts:  # every therapist is fully booked: a real outcome under this load
        return
    start = random.choice(starts[: max(1, len(starts) // 4)])
    _status, html, _ = timed("GET", f"/en/sessions/book/propose/?start={start}")
    therapist = re.search(r'name="therapist" value="(\d+)"', html)
    planned = re.search(r'name="starts" value="([^"]+)"', html)
    if therapist and planned:
        form = {"therapist": therapist.group(1), "starts": planned.group(1)}
        timed("POST", "/en/sessions/book/confirm/", {"csrfmiddlewaretoken": _token(html), **form})
    timed("GET", "/en/sessions/")
    timed("GET", "/en/chat/")


def _token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    return match.group(1) if match else ""


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _summary(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        page: {
            "n": len(v),
            "p50_ms": round(statistics.median(v), 2),
            "p99_ms": round(_percentile(v, 0.99), 2),
            "max_ms": round(max(v), 2),
        }
        for page, v in sorted(samples.items())
    }


def run(
    participants: int,
    seconds: float,
    think_seconds: tuple[float, float] = (0.5, 2.0),
) -> dict[str, object]:
    """Each virtual participant pauses a random 0.5-2 s before each page (reading, ticking
    boxes); ``think_seconds=(0, 0)`` is the closed-loop stress variant."""
    latencies: dict[str, list[float]] = defaultdict(list)
    journeys = [0]
    errors: list[str] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        server.manage("study_load_protocol", str(DEMO_PROTOCOL))
        server.manage("shell", "-c", SEED_STAFF)  # therapists with weekly hours to book
        warm = Browserish(server.url, "127.0.0.1", {})
        sizes: dict[str, int] = {}
        # The first requests compile templates and catalogues; they also measure the pages.
        journey(warm, defaultdict(list), sizes=sizes)
        log_offset = len(server.log_text())
        deadline = time.monotonic() + seconds

        def virtual_participant(n: int) -> None:
            rng = random.Random(n)
            low, high = think_seconds

            def think() -> None:
                if high > 0:
                    time.sleep(rng.uniform(low, high))

            while time.monotonic() < deadline:
                client = Browserish(server.url, "127.0.0.1", {"Accept-Language": "en"})
                try:
                    journey(client, latencies, think)
                except Exception as exc:  # reported, not hidden
                    errors.append(repr(exc))
                    return
                with lock:
                    journeys[0] += 1

        started = time.monotonic()
        with ThreadPoolExecutor(participants) as pool:
            list(pool.map(virtual_participant, range(participants)))
        elapsed = time.monotonic() - started
        server_times: dict[str, list[float]] = defaultdict(list)
        statuses: dict[str, int] = defaultdict(int)
        for method, path, status, ms in ACCESS.findall(server.log_text()[log_offset:]):
            if path.startswith("/static/"):
                continue
            server_times[_page_name(method, path)].append(float(ms))
            statuses[status] += 1
    server = _summary(server_times)
    worst = max(page["p99_ms"] for page in server.values())
    return {
        "participants": participants,
        "think_seconds": list(think_seconds),
        "seconds": round(elapsed, 1),
        "journeys": journeys[0],
        "requests": sum(len(v) for v in server_times.values()),
        "statuses": dict(statuses),
        "errors": errors[:5],
        "server_time": server,
        "client_latency": _summary(latencies),
        "page_bytes": dict(sorted(sizes.items())),
        "worst_page_p99_server_ms": worst,
        "goals": [
            {"name": "worst_page_p99_server_ms", "value": worst, "target": 100, "better": "lower"},
            {"name": "errors", "value": len(errors), "target": 0, "better": "lower"},
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--stress-seconds",
        type=float,
        default=20,
        help="also run without think time (saturation); 0 skips it",
    )
    args = parser.parse_args()
    result = run(args.participants, args.seconds)
    if args.stress_seconds > 0:
        stress = run(args.participants, args.stress_seconds, think_seconds=(0.0, 0.0))
        result["stress_without_think_time"] = {
            key: stress[key]
            for key in ("journeys", "seconds", "requests", "errors", "worst_page_p99_server_ms")
        }
        result["stress_without_think_time"]["journeys_per_second"] = round(
            int(stress["journeys"]) / float(stress["seconds"]), 2
        )  # type: ignore[call-overload]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
