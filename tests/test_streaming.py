"""``plsim run`` streams each arm x replicate to disk: the same tables as in memory,
after a resume, and on a Dask cluster."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from pandas.testing import assert_frame_equal

from sim.analysis.summaries import teacher_summary
from sim.config.scenario import load_scenario
from sim.experiments.output import known_teacher_records, summary_of, write_results
from sim.experiments.runner import run, run_to_directory
from sim.experiments.storage import TABLES

QUICK = Path(__file__).resolve().parents[1] / "scenarios" / "quick.toml"
SMALL = ["years=1", "district.schools=1"]  # 3 arms x 2 replicates x 1 year: six parts
FILES = ("summary.csv", "teacher_summary.csv", "school_summary.csv")


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(QUICK, SMALL, replicates=2)


@pytest.fixture(scope="module")
def in_memory(scenario, tmp_path_factory):
    """The run kept in memory, and written by ``write_results`` (the reference)."""
    results = run(scenario)
    out = tmp_path_factory.mktemp("memory") / "out"
    write_results(results, out)
    return results, out


def stream(scenario, out: Path, **kwargs) -> Path:
    stored = run_to_directory(scenario, out, **kwargs)
    write_results(stored, out, {"fingerprint": stored.fingerprint})
    stored.parts.remove()
    return out


def assert_same_run(out: Path, results, want: Path) -> None:
    for name in TABLES:
        got = pd.read_parquet(out / f"{name}.parquet")
        assert_frame_equal(got, pd.read_parquet(want / f"{name}.parquet"))
        assert_frame_equal(got, getattr(results, name))
    for f in FILES:
        assert (out / f).read_bytes() == (want / f).read_bytes(), f


def test_streamed_run_equals_the_in_memory_run(scenario, in_memory, tmp_path):
    results, want = in_memory
    out = stream(scenario, tmp_path / "out")
    assert_same_run(out, results, want)
    # one row group per arm x replicate, appended in table order
    assert pq.ParquetFile(out / "student_years.parquet").metadata.num_row_groups == 6
    assert not (out / ".parts").exists()


def test_summary_from_parts_equals_the_summary_of_the_whole_table(scenario, in_memory,
                                                                  tmp_path):
    results, _ = in_memory
    stored = run_to_directory(scenario, tmp_path / "out")
    assert len(stored.means) == 6  # every part's means made by the task that ran it
    assert_frame_equal(summary_of(stored), summary_of(results))
    stored.means = {(0, 1): stored.means[(0, 1)]}  # the rest read back from the parts
    assert_frame_equal(summary_of(stored), summary_of(results))
    records = known_teacher_records(stored)  # the teachers' per-part records, likewise
    assert len(records) == 6
    assert_frame_equal(teacher_summary(pd.DataFrame(), records),
                       teacher_summary(results.teacher_years))
    del stored.teacher_records[(1, 2)]  # one part resumed: the whole table is read instead
    assert known_teacher_records(stored) is None
    from sim.analysis.summaries import summarise

    assert_frame_equal(summary_of(results), summarise(results.student_years))


def test_resume_after_lost_parts_equals_an_uninterrupted_run(scenario, in_memory, tmp_path):
    results, want = in_memory
    out = tmp_path / "out"
    stored = run_to_directory(scenario, out)
    assert stored.ran == 6
    # an interruption: two parts lost (one wholly, one with only its first table written)
    for name in TABLES:
        (out / ".parts" / name / "r0001-a002.parquet").unlink()
    (out / ".parts" / "school_years" / "r0000-a001.parquet").unlink()
    resumed = run_to_directory(scenario, out, resume=True)
    assert (resumed.ran, resumed.skipped) == (2, 4)
    write_results(resumed, out)
    resumed.parts.remove()
    assert_same_run(out, results, want)


def test_more_replicates_resume_from_fewer(scenario, in_memory, tmp_path):
    """A part does not depend on the number of replicates: 1 then --resume with 2."""
    results, want = in_memory
    out = tmp_path / "out"
    one = run_to_directory(scenario.model_copy(update={"replicates": 1}), out)
    assert one.ran == 3
    two = run_to_directory(scenario, out, resume=True)
    assert (two.ran, two.skipped) == (3, 3)
    write_results(two, out)
    assert_same_run(out, results, want)


@pytest.fixture(scope="module")
def dask_address():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                           host="127.0.0.1", dashboard_address=None,
                           silence_logs=logging.ERROR)
    yield cluster.scheduler_address
    cluster.close()


def test_dask_cluster_gives_identical_tables(scenario, in_memory, dask_address, tmp_path):
    results, want = in_memory
    out = stream(scenario, tmp_path / "out", scheduler=dask_address)
    assert_same_run(out, results, want)
    from_memory = run(scenario, scheduler=dask_address)  # the in-memory run on Dask too
    for name in TABLES:
        assert_frame_equal(getattr(from_memory, name), getattr(results, name))


def test_finished_districts_are_freed(scenario, monkeypatch):
    """A long-lived worker must not keep every district it ran (Mesa 3.3's Agent holds a
    class-level dict keyed by model): memory stays bounded by the runs in flight."""
    import weakref

    import sim.experiments.runner as runner

    built = []

    class Recorded(runner.District):
        def __init__(self, *args, **kwargs):
            built.append(weakref.ref(self))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(runner, "District", Recorded)
    reference = runner.state_reference(scenario)
    for a in range(2):
        key, tables = runner.arm_task((scenario, a, 0, reference))
        assert key == (0, a) and len(tables["student_years"]) > 0
    assert len(built) == 2
    assert [w() for w in built] == [None, None]


def test_a_finished_district_is_freed():
    """Nothing outside a district keeps it alive once its run is done (Mesa 3.3's
    agent-id counters held every model for the life of the process, so a worker's
    memory grew with every arm x replicate it ran)."""
    import gc
    import weakref

    from sim.district.reference import state_reference
    from sim.experiments import bench

    mix = bench.mix_scenario(900)
    reference = state_reference(mix)

    def one_district():
        district = bench.mix_district(mix, 0, reference)
        district.start_year()
        for day in range(3):
            district.day = day
            district.step()
        assert district.staff.n > 0 and len(district.agents) > 0  # agents were made
        return weakref.ref(district)

    ref = one_district()
    gc.collect()
    assert ref() is None
