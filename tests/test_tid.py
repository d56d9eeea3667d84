"""TID record keys derived from paintings (migrator.tid)."""

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from migrator.tid import clock_id_for, is_valid_tid, tid_decode, tid_encode, tid_for_painting, tid_problem

REF = "64e7a1f0c2b3a4d5e6f70812"
WHEN = datetime(2023, 8, 24, 16, 21, 9, 123000, tzinfo=timezone.utc)

whens = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc)
)
refs = st.text(alphabet="0123456789abcdef", min_size=24, max_size=24)


def test_a_painting_key_is_a_valid_tid():
    key = tid_for_painting(when=WHEN, ref=REF)
    assert len(key) == 13
    assert key[0] in "234567abcdefghij"
    assert is_valid_tid(key)


def test_a_retry_computes_the_same_key():
    assert tid_for_painting(when=WHEN, ref=REF) == tid_for_painting(when=WHEN, ref=REF.upper())


def test_the_key_holds_the_painting_time_and_a_clock_id_from_its_object_id():
    micros, clock_id = tid_decode(tid_for_painting(when=WHEN, ref=REF))
    assert datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc) == WHEN
    assert clock_id == clock_id_for(REF) < 1024


def test_a_naive_when_is_taken_as_utc():
    assert tid_for_painting(when=WHEN.replace(tzinfo=None), ref=REF) == tid_for_painting(when=WHEN, ref=REF)


def test_paintings_made_in_the_same_millisecond_usually_get_different_keys():
    keys = {tid_for_painting(when=WHEN, ref=f"{n:024x}") for n in range(100)}
    assert len(keys) > 90



def test_the_zero_tid_is_all_twos():
    assert tid_encode(micros=0, clock_id=0) == "2222222222222"
    assert tid_decode("2222222222223") == (0, 1)


@given(st.lists(st.tuples(whens, refs), min_size=2, max_size=20))
def test_sorting_keys_sorts_by_creation_time(paintings):
    keyed = sorted((tid_for_painting(when=when, ref=ref), when) for when, ref in paintings)
    assert [when for _key, when in keyed] == sorted(when for when, _ref in paintings)


@given(whens, refs)
def test_decode_inverts_encode(when, ref):
    key = tid_for_painting(when=when, ref=ref)
    assert tid_encode(micros=tid_decode(key)[0], clock_id=tid_decode(key)[1]) == key


@pytest.mark.parametrize(
    "value",
    ["", "222222222222", "22222222222222", "k222222222222", "2222222222221", "222222222222A", None, 12],
)
def test_it_refuses_invalid_tids(value):
    assert not is_valid_tid(value)
    assert tid_problem(value)


def test_it_refuses_a_ref_that_is_not_an_object_id():
    with pytest.raises(ValueError, match="ObjectId"):
        tid_for_painting(when=WHEN, ref="not-an-object-id")


def test_it_refuses_a_time_before_the_epoch():
    with pytest.raises(ValueError, match="range"):
        tid_for_painting(when=datetime(1969, 12, 31, tzinfo=timezone.utc), ref=REF)


def test_a_time_one_microsecond_later_sorts_after():
    a = tid_for_painting(when=WHEN, ref="f" * 24)
    b = tid_for_painting(when=WHEN + timedelta(microseconds=1), ref="0" * 24)
    assert a < b
