"""Benchmark: the pseudonymised export of 10,000 participants x 6 time points x 20 items.

Prints one JSON object. Goal (issue 3): under 10 s on this 2-core machine, memory flat
(streamed). Memory is measured with tracemalloc as the peak during the export of 1,000 and of
10,000 participants: streamed output keeps the two peaks close.

Run: .venv/bin/python bench/study.py [--participants 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def _setup_django(var_dir: str) -> None:
    os.environ["STOPCSAM_VAR_DIR"] = var_dir
    os.environ["DJANGO_SETTINGS_MODULE"] = "stopcsam.settings_test"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _definition(points: int, items: int, version: str) -> dict[str, Any]:
    from stopcsam.study.demo import demo_definition

    definition = demo_definition()
    definition["version"] = version
    options = [{"value": v, "label": {"en": str(v)}} for v in range(5)]
    definition["instruments"] = [
        {
            "key": "bench",
            "version": "1",
            "title": {"en": "Benchmark instrument"},
            "items": [
                {
                    "key": f"q{n:02d}",
                    "type": "likert",
                    "label": {"en": f"Question {n}"},
                    "options": options,
                    "reverse": n % 5 == 0,
                }
                for n in range(items)
            ],
            "scales": [
                {
                    "key": "total",
                    "items": [f"q{n:02d}" for n in range(items)],
                    "method": "sum",
                    "min_answered": items // 2,
                }
            ],
        }
    ]
    definition["schedule"] = [
        {
            "key": _point_key(p, points),
            "label": {"en": f"Point {p}"},
            "day": 14 * p,
            "window_days": 14,
            "instruments": ["bench"],
        }
        for p in range(points)
    ]
    for arm in definition["arms"]:  # the waiting list waits for the last of these points
        if arm.get("offers_chat_after"):
            arm["offers_chat_after"] = _point_key(points - 1, points)
    definition["primary_time_point"] = _point_key(points - 1, points)
    return definition


def _point_key(index: int, points: int) -> str:
    if index == 0:
        return "baseline"
    return "followup" if index == points - 1 else f"t{index}"


def _populate(participants: int, points: int, items: int) -> Any:
    from django.db import transaction
    from django.utils import timezone

    from stopcsam.accounts.models import Participant
    from stopcsam.study.models import Enrolment, Response
    from stopcsam.study.services import protocol_load

    version = protocol_load(definition=_definition(points, items, f"bench-{participants}"))
    now = timezone.now()
    with transaction.atomic():
        people = Participant.objects.bulk_create(
            [
                Participant(
                    codename_lookup=f"{participants}-{n}", codename_hash="bench", language="de"
                )
                for n in range(participants)
            ],
            batch_size=2000,
        )
        enrolments = Enrolment.objects.bulk_create(
            [
                Enrolment(
                    participant=p,
                    protocol=version,
                    status="randomized",
                    language="de",
                    site="DE",
                    stratum="DE|de",
                    screening_answers="{}",
                    enrolled_at=now,
                    consented_at=now,
                    randomized_at=now,
                    arm="chat" if n % 2 else "waitlist",
                    allocation_position=n,
                )
                for n, p in enumerate(people)
            ],
            batch_size=2000,
        )
    with transaction.atomic():
        batch: list[Response] = []
        for n, enrolment in enumerate(enrolments):
            for p in range(points):
                answers = {f"q{i:02d}": (n + p + i) % 5 for i in range(items)}
                batch.append(
                    Response(
                        enrolment=enrolment,
                        time_point=_point_key(p, points),
                        instrument="bench",
                        instrument_version="1",
                        answers=answers,
                        free_text="{}",
                        scores={"total": float(sum(answers.values()))},
                        started_at=now,
                        completed_at=now,
                    )
                )
            if len(batch) >= 5000:
                Response.objects.bulk_create(batch)
                batch = []
        Response.objects.bulk_create(batch)
    return version


def _export(version: Any) -> tuple[float, int, int]:
    from stopcsam.study.export import export_csv

    started = time.perf_counter()
    lines = size = 0
    for line in export_csv(version):
        lines += 1
        size += len(line)
    return time.perf_counter() - started, lines, size


def _peak_memory(version: Any) -> int:
    from stopcsam.study.export import export_csv

    tracemalloc.start()
    for _line in export_csv(version):
        pass
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var_dir:
        _setup_django(var_dir)
        from stopcsam.study.models import ProtocolVersion

        small = _populate(args.participants // 10, args.points, args.items)
        small_peak = _peak_memory(small)
        ProtocolVersion.objects.filter(pk=small.pk).update(is_active=False)
        setup_started = time.perf_counter()
        version = _populate(args.participants, args.points, args.items)
        setup_seconds = time.perf_counter() - setup_started
        runs = [_export(version) for _ in range(args.repeat)]
        seconds = [run[0] for run in runs]
        large_peak = _peak_memory(version)
    median = statistics.median(seconds)
    rows = runs[0][1] - 1
    result = {
        "participants": args.participants,
        "time_points": args.points,
        "items": args.items,
        "rows": rows,
        "bytes": runs[0][2],
        "setup_seconds": round(setup_seconds, 2),
        "export_seconds_runs": [round(s, 3) for s in seconds],
        "export_seconds_median": round(median, 3),
        "rows_per_second": round(rows / median),
        "peak_traced_bytes_small": small_peak,
        "peak_traced_bytes_large": large_peak,
        "memory_growth_ratio": round(large_peak / small_peak, 2),
        "goals": [
            {
                "name": "export_seconds_median",
                "value": round(median, 3),
                "target": 10,
                "better": "lower",
            },
            {
                "name": "memory_growth_ratio_10x_data",
                "value": round(large_peak / small_peak, 2),
                "target": 2,
                "better": "lower",
            },
        ],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
