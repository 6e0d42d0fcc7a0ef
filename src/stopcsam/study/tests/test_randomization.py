from __future__ import annotations

import contextlib
import io
import threading
from collections import Counter

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from stopcsam.core.models import AuditEvent
from stopcsam.study import randomization
from stopcsam.study.demo import demo_definition
from stopcsam.study.exceptions import AlreadyRandomizedError, StepOutOfOrderError
from stopcsam.study.models import Enrolment, ProtocolVersion, StratumCounter
from stopcsam.study.services import protocol_load, randomize
from stopcsam.study.tests.conftest import enrolled, four_arm_definition

SEEDS = st.binary(min_size=32, max_size=32).map(bytes.hex)
DESIGNS = st.sampled_from(
    [
        (("chat", "waitlist"), (1, 2, 3)),
        (("selfhelp", "chat", "both", "waitlist"), (1, 2, 3)),
        (("chat", "chat", "waitlist"), (1, 2)),  # 2:1
    ]
)


@settings(max_examples=200)
@given(
    seed=SEEDS,
    design=DESIGNS,
    count=st.integers(1, 300),
    strata=st.lists(st.sampled_from(["DE|de", "CZ|cs", "PT|pt"]), min_size=1, max_size=300),
)
def test_blocks_stay_balanced_and_close_exactly(
    seed: str, design: tuple[tuple[str, ...], tuple[int, ...]], count: int, strata: list[str]
) -> None:
    base, multipliers = design
    largest = len(base) * max(multipliers)
    ratio = Counter(base)
    for stratum in set(strata):
        n = strata.count(stratum)
        sequence = randomization.allocations(seed, stratum, n, base, multipliers)
        seen: Counter[str] = Counter()
        blocks = randomization.sequence(seed, stratum, base, multipliers)
        block_end = 0
        for position, arm in enumerate(sequence, start=1):
            seen[arm] += 1
            # Deviation from the ratio never exceeds half the largest block.
            expected_unit = position / len(base)
            for key, weight in ratio.items():
                assert abs(seen[key] - expected_unit * weight) <= largest / 2
            while position > block_end:
                block_end += len(next(blocks))
            if position == block_end:  # at a block's end the ratio holds exactly
                units = position // len(base)
                assert all(seen[key] == units * weight for key, weight in ratio.items())
    assert count >= 1


@given(seed=SEEDS, other=SEEDS)
def test_a_seed_reproduces_its_sequence_and_another_seed_does_not(seed: str, other: str) -> None:
    base, multipliers = ("chat", "waitlist"), (1, 2, 3)
    first = randomization.allocations(seed, "DE|de", 60, base, multipliers)
    assert first == randomization.allocations(seed, "DE|de", 60, base, multipliers)
    if seed != other:
        assert first != randomization.allocations(other, "DE|de", 60, base, multipliers)


def test_block_sizes_vary(db: None) -> None:
    sizes = {len(randomization.block("ab" * 32, "s", i, ("a", "b"), (1, 2, 3))) for i in range(60)}
    assert sizes == {2, 4, 6}


@pytest.mark.django_db
def test_assignment_happens_once_and_is_audited(version: ProtocolVersion) -> None:
    enrolment = enrolled(version)
    arm = randomize(enrolment=enrolment)
    assert arm in {"chat", "waitlist"} and enrolment.arm == arm
    with pytest.raises(AlreadyRandomizedError):
        randomize(enrolment=enrolment)
    event = AuditEvent.objects.get(action="study.randomized")
    assert event.detail == {"stratum": "DE|en", "position": 0, "arm": arm}


@pytest.mark.django_db
def test_no_randomization_before_consent(version: ProtocolVersion) -> None:
    with pytest.raises(StepOutOfOrderError):
        randomize(enrolment=enrolled(version, consented=False))


@pytest.mark.django_db
def test_nothing_stored_reveals_the_next_assignment(version: ProtocolVersion) -> None:
    randomize(enrolment=enrolled(version))
    stored = repr(list(StratumCounter.objects.values()))
    raw = connection.cursor().execute("SELECT sealed_seed FROM study_protocolversion").fetchone()
    assert "chat" not in stored and "waitlist" not in stored
    assert version.sealed_seed not in raw[0]  # the seed is sealed with the field key
    assert randomization.seed_commitment(version.sealed_seed) == version.seed_commitment


@pytest.mark.django_db
def test_assignments_follow_the_sealed_sequence(version: ProtocolVersion) -> None:
    arms = [randomize(enrolment=enrolled(version, "de")) for _ in range(12)]
    expected = randomization.allocations(
        version.sealed_seed, "DE|de", 12, ("chat", "waitlist"), (1, 2, 3)
    )
    assert arms == expected
    from django.core.management import call_command

    call_command("study_verify", stdout=io.StringIO())


@pytest.mark.django_db
def test_verification_finds_a_tampered_assignment(version: ProtocolVersion) -> None:
    from django.core.management import CommandError, call_command

    enrolment = enrolled(version)
    arm = randomize(enrolment=enrolment)
    Enrolment.objects.filter(pk=enrolment.pk).update(arm="waitlist" if arm == "chat" else "chat")
    with pytest.raises(CommandError, match="do not match"):
        call_command("study_verify", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
def test_a_four_arm_trial_randomizes(db: None) -> None:
    version = protocol_load(definition=four_arm_definition())
    arms = Counter(randomize(enrolment=enrolled(version)) for _ in range(24))
    assert set(arms) <= {"selfhelp", "chat", "both", "waitlist"} and sum(arms.values()) == 24


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_assign_each_participant_exactly_once() -> None:
    """200 concurrent requests for 200 participants (PostgreSQL in CI's second run)."""
    version = protocol_load(definition=demo_definition())
    enrolments = [enrolled(version, "de") for _ in range(200)]
    errors: list[BaseException] = []
    start = threading.Barrier(20)

    def worker(chunk: list[Enrolment]) -> None:
        try:
            start.wait()
            for enrolment in chunk:
                for _attempt in range(2):  # the same participant asked twice, concurrently
                    with contextlib.suppress(AlreadyRandomizedError):
                        randomize(enrolment=enrolment)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()  # threads own their connections; free them for teardown

    chunks = [enrolments[i::20] for i in range(20)]
    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assigned = list(
        Enrolment.objects.filter(protocol=version).values_list("allocation_position", "arm")
    )
    assert len(assigned) == 200 and all(arm for _, arm in assigned)
    assert sorted(p for p, _ in assigned) == list(range(200))
    assert AuditEvent.objects.filter(action="study.randomized").count() == 200
    expected = randomization.allocations(
        version.sealed_seed, "DE|de", 200, ("chat", "waitlist"), (1, 2, 3)
    )
    assert [arm for _, arm in sorted(assigned)] == expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="runs when DATABASE_URL is set")
def test_the_baselines_last_two_questionnaires_completed_at_once_randomize() -> None:
    """Two tabs complete the baseline's last two questionnaires at once: the second waits
    for the first's lock on the enrolment and sees its answers complete, so one of them
    randomizes. Each counted the other's as unanswered, and neither did (the participant was
    left consented, with nothing due and no allocation)."""
    import time

    from django.db import connections, transaction

    from stopcsam.study.selectors import parsed_protocol
    from stopcsam.study.tests.conftest import answer_baseline

    version = protocol_load(definition=demo_definition())
    enrolment = enrolled(version)
    instruments = [
        parsed_protocol(version).instruments[name]
        for name in parsed_protocol(version).baseline.instruments
    ]
    for instrument in instruments[:-2]:
        answer_baseline(enrolment, instrument)
    first_saved, faults = threading.Event(), []

    def first() -> None:
        try:
            with transaction.atomic():
                answer_baseline(Enrolment.objects.get(pk=enrolment.pk), instruments[-2])
                first_saved.set()
                time.sleep(0.5)  # the second tab's answers arrive before this commits
        except Exception as fault:
            faults.append(fault)
        finally:
            first_saved.set()
            connections.close_all()

    def second() -> None:
        first_saved.wait(10)
        try:
            answer_baseline(Enrolment.objects.get(pk=enrolment.pk), instruments[-1])
        except Exception as fault:
            faults.append(fault)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert faults == []
    enrolment.refresh_from_db()
    assert enrolment.status == Enrolment.Status.RANDOMIZED and enrolment.arm
