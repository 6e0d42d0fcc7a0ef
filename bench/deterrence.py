"""Benchmark of the deterrence check: the matcher alone, then the HTTP endpoint.

1. Matcher: 50,000 synthetic, neutral terms across five languages (codename words and random
   letter strings; never real terms), queried on one core. Reports build time, memory and
   queries per second.
2. HTTP: a real ``stopcsam serve`` process on 127.0.0.1 and 64 concurrent keep-alive
   clients (asyncio, one connection each) posting to /api/v1/deterrence/check. Reports
   requests per second and p50/p99 latency.

Prints one JSON object. Run from the repository root: ``.venv/bin/python bench/deterrence.py``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from stopcsam.outreach.matching import Matcher, Term  # noqa: E402

LANGUAGES = ("en", "de", "cs", "pt", "es")
WORDLISTS = ROOT / "src" / "stopcsam" / "accounts" / "wordlists"
TERMS = 50_000
CLIENTS = 64
HTTP_SECONDS = float(os.environ.get("BENCH_HTTP_SECONDS", "10"))
rng = random.Random(20261122)


def words(language: str) -> list[str]:
    lines = (WORDLISTS / f"{language}.txt").read_text(encoding="utf-8").split()
    return [w for w in lines if w.isalpha() and len(w) >= 3]


def random_word() -> str:
    return "".join(rng.choice("bcdfghjklmnpqrstvwxz") + rng.choice("aeiou") for _ in range(4))


def synthetic_terms(vocab: dict[str, list[str]]) -> list[Term]:
    terms: set[Term] = set()
    while len(terms) < TERMS:
        language = rng.choice(LANGUAGES)
        mode = rng.choice(("word", "phrase", "prefix"))
        count = rng.randint(2, 3) if mode == "phrase" else 1
        # Random letter strings, and phrases that start with an ordinary word: neutral, and
        # rare enough in the queries that about one query in ten matches (see below).
        first = rng.choice(vocab[language]) if mode == "phrase" else random_word()
        parts = [first, *(random_word() for _ in range(count - 1))]
        terms.add(Term(" ".join(parts), language, mode, f"synthetic-{language}"))
    return list(terms)


def synthetic_queries(vocab: dict[str, list[str]], terms: list[Term], n: int) -> list[str]:
    queries = []
    for _ in range(n):
        language = rng.choice(LANGUAGES)
        text = [rng.choice(vocab[language]) for _ in range(rng.randint(2, 7))]
        if rng.random() < 0.1:  # one in ten contains a listed term, upper-cased and hyphenated
            text.insert(
                rng.randrange(len(text) + 1), rng.choice(terms).term.upper().replace(" ", "-")
            )
        queries.append(" ".join(text))
    return queries


def rss_kib() -> int:
    with Path("/proc/self/statm").open() as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def bench_matcher() -> dict[str, Any]:
    vocab = {language: words(language) for language in LANGUAGES}
    terms = synthetic_terms(vocab)
    queries = synthetic_queries(vocab, terms, 20_000)
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    matcher = Matcher(terms)
    build_seconds = time.perf_counter() - started
    memory_kib = rss_kib() - before
    matched = sum(1 for q in queries[:2000] if matcher.matches(q))
    rounds, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3.0:
        for query in queries:
            matcher.first(query)
        rounds += 1
    elapsed = time.perf_counter() - started
    return {
        "terms": len(terms),
        "build_seconds": round(build_seconds, 3),
        "memory_mib": round(memory_kib / 1024, 1),
        "queries_per_second": round(rounds * len(queries) / elapsed),
        "share_matching": round(matched / 2000, 3),
    }


# --- HTTP -------------------------------------------------------------------------------------


async def client(
    port: int, key: str, bodies: list[bytes], stop_at: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /api/v1/deterrence/check HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    )
    errors = 0
    while time.perf_counter() < stop_at:
        body = rng.choice(bodies)
        request = f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        started = time.perf_counter()
        writer.write(request)
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if b" 200 " not in status_line:
            errors += 1
    writer.close()
    return errors


async def load(port: int, key: str, bodies: list[bytes], seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    warm_stop = time.perf_counter() + 2.0
    await asyncio.gather(*(client(port, key, bodies, warm_stop, []) for _ in range(CLIENTS)))
    stop_at = time.perf_counter() + seconds
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(client(port, key, bodies, stop_at, latencies) for _ in range(CLIENTS))
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "clients": CLIENTS,
        "seconds": round(elapsed, 1),
        "requests": len(latencies),
        "non_200": sum(errors),
        "requests_per_second": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
    }


def bench_http() -> dict[str, Any]:
    from tests.server import running_server

    vocab = {language: words(language) for language in LANGUAGES}
    plain = [" ".join(rng.choice(vocab[lang]) for _ in range(4)) for lang in LANGUAGES * 40]
    bodies = [json.dumps({"query": q, "lang": "en"}).encode() for q in plain]
    # One request in ten is a match (placeholder terms), which writes a funnel counter.
    bodies += [json.dumps({"query": "about placeholder-term-alpha"}).encode()] * (len(bodies) // 9)
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp)) as server:
        key = server.manage(
            "apikey", "create", "--partner", "Bench", "--campaign", "bench", "--rate", "100000000"
        ).strip()
        port = int(server.url.rsplit(":", 1)[1])
        return {"server_processes": 1, **asyncio.run(load(port, key, bodies, HTTP_SECONDS))}


def main() -> None:
    matcher = bench_matcher()
    http = bench_http()
    result = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "matcher": matcher,
        "http": http,
        "goals": [
            {
                "name": "matcher queries per second (one core, 50,000 terms)",
                "value": matcher["queries_per_second"],
                "target": 100_000,
                "better": "higher",
            },
            {
                "name": "http requests per second (64 keep-alive clients)",
                "value": http["requests_per_second"],
                "target": 2000,
                "better": "higher",
            },
            {
                "name": "http p99 latency ms",
                "value": http["p99_ms"],
                "target": 20,
                "better": "lower",
            },
        ],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
