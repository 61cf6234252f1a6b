"""How the benchmark combines a line's runs (medians, kept runs, errors) and pairs ratios by round."""

from __future__ import annotations

import pytest

from fraud_ml.ops.bench import BenchOptions, combine_runs, paired_ratio, run_benchmark


def test_a_line_reports_the_median_of_its_runs_and_keeps_them():
    runs = [
        {"throughput_tps": 40_000.0, "batches": 4, "stage_ms_p50": {"score": 4000.0, "write": 300.0}, "note": "a"},
        {"throughput_tps": 70_000.0, "batches": 3, "stage_ms_p50": {"score": 2000.0, "write": 200.0}, "note": "b"},
        {"throughput_tps": 60_000.0, "batches": 5, "stage_ms_p50": {"score": 2500.0, "write": None}, "note": "c"},
    ]
    combined = combine_runs(runs)
    assert combined["throughput_tps"] == 60_000.0 and combined["batches"] == 4.0
    assert combined["stage_ms_p50"] == {"score": 2500.0, "write": 250.0}
    assert combined["note"] == "a" and combined["runs"] == runs


def test_a_failed_run_makes_the_line_an_error():
    combined = combine_runs([{"throughput_tps": 1.0}, {"error": "RuntimeError: broker gone"}])
    assert combined["error"] == "RuntimeError: broker gone" and len(combined["runs"]) == 2


def test_ratios_pair_the_runs_of_one_round():
    # round 1 on a slow spell of the machine, round 2 on a fast one: each within-round ratio is 0.9
    lines = {
        "stream": combine_runs([{"throughput_tps": 45_000.0}, {"throughput_tps": 72_000.0}]),
        "floor": combine_runs([{"throughput_tps": 50_000.0}, {"throughput_tps": 80_000.0}]),
    }
    assert paired_ratio(lines, "stream", "floor") == pytest.approx(0.9)
    assert paired_ratio(lines, "stream", "peer") is None


def test_no_rounds_is_refused_before_anything_starts(base_config):
    with pytest.raises(ValueError, match="--repeats must be at least 1, got 0"):
        run_benchmark(base_config, BenchOptions(repeats=0))


def test_the_decode_probe_times_json_and_the_configured_format_on_the_same_rows(base_config):
    from fraud_ml.ops.bench import bench_frame, decode_probe

    avro = base_config.with_overrides(["stream.message.format=avro"], env={})
    timings = decode_probe(avro, bench_frame(600, seed=3), (50, 600))
    assert set(timings) == {"json", "avro"} and all(set(t) == {"50", "600"} for t in timings.values())
    assert all(0 < us < 10_000 for t in timings.values() for us in t.values())
    assert set(decode_probe(base_config, bench_frame(100, seed=3), (100,))) == {"json"}
