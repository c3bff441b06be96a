"""The fast float32 uniforms (``random_streams.uniform32``) are numpy's, draw for draw."""

import numpy as np
import pytest

from sim.engine import random_streams
from sim.engine.random_streams import DailyDraws, Streams, replicate_seed, uniform32


def _pair(seed=9):
    ss = np.random.SeedSequence(seed, spawn_key=(3,))
    return (np.random.Generator(np.random.PCG64(ss)),
            np.random.Generator(np.random.PCG64(ss)))


@pytest.mark.parametrize("shapes", [[(7,), (6, 45), 1], [100_000, (5, 9), (4,)],
                                    [(2, 3), 99_999, (3, 3)],
                                    [(4096, 45), (1, 2 * random_streams.RAW_BLOCK + 1)]])
def test_uniform32_is_numpys_draws_and_state(shapes):
    """Odd and even draws in a row, with a normal draw between (as the diagnostic's
    chunks draw): the same numbers and the same generator state as ``gen.random``."""
    want_gen, got_gen = _pair()
    for shape in shapes:
        want = want_gen.random(shape, dtype=np.float32)
        got = uniform32(got_gen, shape)
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.array_equal(got, want)
        assert np.array_equal(want_gen.standard_normal(3), got_gen.standard_normal(3))
        assert want_gen.bit_generator.state == got_gen.bit_generator.state
    assert random_streams._raw_path_matches()


def test_uniform32_falls_back_for_other_generators():
    a = np.random.Generator(np.random.Philox(4))
    b = np.random.Generator(np.random.Philox(4))
    assert np.array_equal(uniform32(a, (3, 5)), b.random((3, 5), dtype=np.float32))


def test_daily_draws_are_philox_keyed_by_replicate_and_counted_by_slot_day_year_stream():
    """A day's draws are Philox blocks: the replicate's key, counter (slot // 4, day,
    year, stream); the same for any number of slots drawn, other for another replicate,
    day, year or stream."""
    from sim.engine import philox
    from sim.engine.random_streams import stream_key

    streams = Streams(replicate_seed(5, 1))
    draws = DailyDraws(streams, 2, 17, 1001)
    key = streams.philox_key
    assert key == tuple(int(w) for w in replicate_seed(5, 1).generate_state(2, np.uint32))
    want = philox.uniforms(key, 1001, 17, 2, stream_key("learn"))
    assert np.array_equal(draws["learn"], want)
    assert np.array_equal(streams.daily("learn", 2, 17, 10), want[:10])
    for other in (draws["exit_slip"], streams.daily("learn", 2, 18, 1001),
                  streams.daily("learn", 3, 17, 1001),
                  Streams(replicate_seed(5, 2)).daily("learn", 2, 17, 1001),
                  Streams(replicate_seed(6, 1)).daily("learn", 2, 17, 1001),
                  streams.daily("learn", 2, 17, 1001, extra=1)):
        assert not np.array_equal(other, want)
        assert abs(np.corrcoef(other, want)[0, 1]) < 0.1
    with pytest.raises(KeyError):
        streams.daily("lern", 2, 17, 10)
