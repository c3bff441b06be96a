"""Philox4x32-10 (sim.engine.philox) against Random123's published known answers."""

import numpy as np
import pytest

from sim.engine import philox

# Random123, tests/kat_vectors (github.com/DEShawResearch/random123): the three
# "philox4x32 10" lines, counter (4 words), key (2 words), expected (4 words).
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KAT)
def test_known_answers(counter, key, expected):
    got = philox.block(*counter, *key)
    assert tuple(int(w) for w in got) == expected
    with np.errstate(over="ignore"):  # uint32 arithmetic wraps, as it must
        assert tuple(int(w) for w in philox.block.py_func(*counter, *key)) == expected


def test_uniforms_are_the_blocks_words_in_slot_order():
    key = (0xA4093822, 0x299F31D0)
    u = philox.uniforms(key, 10, day=7, year=3, stream=12345)
    words = [w for b in range(3) for w in philox.block(b, 7, 3, 12345, *key)][:10]
    assert u.dtype == np.float32
    assert np.array_equal(u, (np.array(words, np.uint64) >> 8).astype(np.float32) / 2**24)
    # a slot's draw does not depend on how many slots are drawn
    assert np.array_equal(philox.uniforms(key, 3, 7, 3, 12345), u[:3])


def test_uniforms_look_uniform_and_streams_differ():
    key = (1, 2)
    u = philox.uniforms(key, 200_000, day=0, year=0, stream=1)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 0.003 and abs(u.var() - 1 / 12) < 0.001
    counts = np.bincount((u * 20).astype(int), minlength=20)
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 45  # 19 degrees of freedom: p about 0.001
    others = [philox.uniforms(key, 1000, 1, 0, 1), philox.uniforms(key, 1000, 0, 1, 1),
              philox.uniforms(key, 1000, 0, 0, 2), philox.uniforms((1, 3), 1000, 0, 0, 1),
              philox.uniforms(key, 1000, 0, 0, 1, extra=1)]
    for o in others:
        assert abs(np.corrcoef(u[:1000], o)[0, 1]) < 0.12 and not np.array_equal(u[:1000], o)


def test_out_of_range_day_is_refused():
    with pytest.raises(ValueError, match="65536"):
        philox.uniforms((0, 0), 4, day=70_000, year=0, stream=0)
