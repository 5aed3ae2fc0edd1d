"""The benchmark scripts run at tiny settings and print what benchmarks/README.md quotes.

No timing is asserted here: the figures are in benchmarks/README.md, measured on purpose.
"""

import json

import pandas as pd
import pytest
import torch

from tests.conftest import TIMELINE, TINY_SWEEP

NO_GPU = not torch.cuda.is_available()


def last_json(proc) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def refusal(main, argv: list[str], capsys) -> str:
    """A benchmark's main(argv), in this process (its CLI runs in a subprocess in the test of
    what it measures), refuses: exit 2; its stderr returned."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    return capsys.readouterr().err


def test_throughput_reports_a_ratio_per_configuration(run_cli):
    result = last_json(run_cli("benchmarks/throughput.py", "--json", "--steps", "16", "--eval-every", "8",
                               "--repeats", "1", "--configs", "2", "--seeds", "2", timeout=300))
    assert len(result["configs"]) == 2 and result["seeds"] == 2
    for row in result["configs"]:
        assert {"dimension", "width", "depth", "bare_samples_per_s", "trainable_samples_per_s",
                "ratio"} <= set(row)
        assert row["ratio"] == pytest.approx(row["trainable_samples_per_s"] / row["bare_samples_per_s"])
    assert result["min_ratio"] == min(row["ratio"] for row in result["configs"])


def test_throughput_rejects_bad_settings(capsys):
    from benchmarks.throughput import main

    assert "eval-every <= steps" in refusal(main, ["--steps", "8", "--eval-every", "16"], capsys)


@pytest.mark.skipif(not NO_GPU, reason="checks the refusal on a machine without a GPU")
def test_products_split_a_layer_s_step_batched_per_replica_and_single(run_cli):
    result = last_json(run_cli("benchmarks/products.py", "--json", "--widths", "8,16", "--batch", "32",
                               "--repeats", "2", timeout=120))
    assert [row["width"] for row in result["widths"]] == [8, 16] and result["seeds"] == 3
    for row in result["widths"]:
        assert all(row[f"{part}_ratio"] > 0
                   for part in ("elementwise", "layer_step", "layer_step_per_replica"))
    proc = run_cli("benchmarks/products.py", "--widths", "8,x", timeout=120)
    assert proc.returncode == 2 and "--widths wants integers" in proc.stderr


def test_gpu_benchmarks_refuse_a_machine_without_a_gpu(run_cli, capsys):
    proc = run_cli("benchmarks/gpu_sharing.py", "--num-samples", "2", timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    from benchmarks.throughput import main

    assert "no CUDA device" in refusal(main, ["--device", "cuda"], capsys)


@pytest.mark.skipif(NO_GPU, reason="needs a GPU")
@pytest.mark.slow
def test_gpu_sharing_compares_shares(run_cli, tmp_path):
    result = last_json(run_cli("benchmarks/gpu_sharing.py", "--json", "--num-samples", "2",
                               "--shares", "0.5,1", "--timelines", str(tmp_path), *TINY_SWEEP,
                               timeout=600))
    assert set(result["shares"]) == {"0.5", "1"} and result["speedup_over_largest_share"]["1"] == 1
    assert all(share["trials"] == 2 and share["errored"] == 0 for share in result["shares"].values())
    assert all(share["worker_time"]["in_calls"] > 0 for share in result["shares"].values())


def test_worker_time_leaves_start_up_out_when_the_driver_events_were_cut():
    from benchmarks.gpu_sharing import worker_time

    def event(tid, name, ts, dur=0):
        return {"tid": tid, "name": name, "ts": ts * 1e6, "dur": dur * 1e6}

    worker = [event("worker:a", "__init__", 2), event("worker:a", "train", 3, 4),
              event("worker:a", "train", 8, 1)]
    whole = worker_time([event("driver:d", "submit_task", 0), *worker])
    assert whole["start_up"] == 2 and whole["in_calls"] == 5 and whole["between_calls"] == 2
    assert whole["timeline_seconds"] == 9 and whole["after_last_call"] == 0
    # Ray kept only the driver's later events: its first request is lost with them.
    cut = worker_time([event("driver:d", "submit_task", 5), *worker])
    assert cut["start_up"] is None and cut["in_calls"] == 5


@pytest.mark.slow
def test_ray_timeline_of_a_sweep_splits_the_workers_time(full_budget_sweep):
    from benchmarks.gpu_sharing import worker_time

    split = worker_time(json.loads((full_budget_sweep / TIMELINE).read_text()))
    assert 1 <= split["workers"] <= 2 and split["in_calls"] > 0
    parts = split["start_up"] + split["in_calls"] + split["between_calls"] + split["after_last_call"]
    assert parts == pytest.approx(split["workers"] * split["timeline_seconds"])


def test_asha_savings_rejects_a_missing_table(run_cli, tmp_path):
    proc = run_cli("benchmarks/asha_savings.py", "--asha-table", str(tmp_path / "none.csv"), timeout=120)
    assert proc.returncode == 2 and "is not a file" in proc.stderr


def printed_json(capsys) -> dict:
    """The JSON object a benchmark's main() printed last."""
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_sweep_efficiency_splits_the_slot_time(ray_runtime, capsys):
    # Its main() here: its sweep runs on the tests' shared Ray runtime (conftest.SharedRay).
    from benchmarks.sweep_efficiency import main

    main(["--json", "--num-samples", "2", *TINY_SWEEP])
    result = printed_json(capsys)
    assert result["trials"] == 2 and 0 < result["efficiency"] <= result["efficiency_of_fit"] <= 1
    split = result["split_of_slot_seconds"]
    assert set(split) == {"training_steps", "in_trial_other", "outside_trials", "ray_start",
                          "analysis_and_rest"}
    assert split["training_steps"] > 0


@pytest.mark.slow
def test_asha_savings_compares_the_same_trials(ray_runtime, capsys):
    # Its main() here: both its sweeps run on the tests' shared Ray runtime (conftest.SharedRay).
    from benchmarks.asha_savings import main

    main(["--json", "--num-samples", "3", *TINY_SWEEP])
    result = printed_json(capsys)
    assert result["trials"] == 3 and 0 < result["compute_ratio_flops"] <= 1
    assert {"best_val_nmse", "best_ratio_overall", "best_ratio_per_task", "wall_seconds"} <= set(result)


def test_asha_matches_a_task_when_its_best_is_within_the_full_bests_seeds_range():
    from benchmarks.asha_savings import compare

    def table(rows):
        return pd.DataFrame(rows, columns=["dimension", "multiply", "val_nmse", "val_nmse_max",
                                           "samples", "params", "train_seconds"])
    # Task d = 1: ASHA's best 1.2e-3 is worse than the full best's median (1e-3) but within its
    # seeds (up to 1.5e-3); task d = 2: ASHA's 3e-3 is past the full best's worst seed (2.5e-3).
    full = table([(1, False, 1e-3, 1.5e-3, 100, 10, 1.0), (1, False, 4e-3, 5e-3, 100, 10, 1.0),
                  (2, False, 2e-3, 2.5e-3, 100, 10, 1.0)])
    asha = table([(1, False, 1.2e-3, 1.4e-3, 25, 10, 0.25), (1, False, 9e-3, 1e-2, 25, 10, 0.25),
                  (2, False, 3e-3, 3.1e-3, 100, 10, 1.0)])
    result = compare(asha, full)
    assert result["tasks"] == 2 and result["tasks_within_seeds_range"] == 1
    assert result["tasks_within_10_percent"] == 0  # 1.2x and 1.5x
    assert result["compute_ratio_flops"] == pytest.approx(150 / 300)
    # The tasks in another order on one side (each lists its bests by NMSE): the same counts.
    asha.loc[2, "val_nmse"] = 1e-4  # d = 2 now ASHA's best overall, listed first; within range
    assert compare(asha, full)["tasks_within_seeds_range"] == 2


def test_asha_replay_needs_a_full_budget_sweep(tmp_path, capsys):
    from benchmarks.asha_replay import main

    assert "no trials.csv" in refusal(main, ["--full-dir", str(tmp_path)], capsys)


def test_judging_by_the_best_so_far_ignores_a_spike_at_a_rung():
    from benchmarks.asha_replay import best_so_far, replay

    # Two MLPs of one task, rung at 4 steps with factor 2: "spiky" is the better one except at the
    # rung itself (Adam's spike at a high learning rate), where it is worse than "steady".
    curves = {"spiky": {2: 0.01, 4: 0.30, 8: 0.005}, "steady": {2: 0.2, 4: 0.1, 8: 0.05}}
    assert best_so_far(curves)["spiky"] == {2: 0.01, 4: 0.01, 8: 0.005}
    table = pd.DataFrame({"run_id": ["steady", "spiky"], "dimension": 2, "multiply": False,
                          "depth": 1, "lr": [1e-3, 1e-2], "steps": 8, "train_seconds": 1.0})
    latest = replay(table, curves, grace=4, reduction=2, slots=1)
    best = replay(table, best_so_far(curves), grace=4, reduction=2, slots=1)
    assert latest.tolist() == [8, 4]  # judged at its spike, the better trial is stopped
    assert best.tolist() == [8, 8]  # by its best so far it goes on (and steady, first, was unopposed)
    per_lr = replay(table, curves, grace=4, reduction=2, slots=1,
                    group_by=("dimension", "multiply", "lr"))
    assert per_lr.tolist() == [8, 8]  # alone at its learning rate, nothing competes with it


def test_rejudging_takes_back_a_first_arrival_once_the_rung_fills():
    from benchmarks.asha_replay import replay

    # Three MLPs of one task, rungs at 2 and 4 of 8 steps, factor 2. "early" steps fastest: it
    # reaches the first rung alone and goes on; "good" and "fair" then reach it, both better.
    curves = {"early": {2: 0.5, 4: 0.4, 8: 0.3}, "good": {2: 0.1, 4: 0.05, 8: 0.01},
              "fair": {2: 0.2, 4: 0.15, 8: 0.1}}
    table = pd.DataFrame({"run_id": list(curves), "dimension": 2, "multiply": False, "depth": 1,
                          "lr": 1e-3, "steps": 8, "train_seconds": [8.0, 12.0, 12.0]})
    asha = replay(table, curves, grace=2, reduction=2, slots=3)
    rejudged = replay(table, curves, grace=2, reduction=2, slots=3, rejudge=True)
    assert asha.tolist()[0] == 8  # first at both rungs: never opposed
    # At its report at 4 steps the first rung holds all three, and "early" is the worst of them.
    assert rejudged.tolist()[0] == 4


def test_synchronous_halving_judges_a_rung_off_the_ladder_at_the_next_report():
    from benchmarks.asha_replay import successive_halving

    # Evaluations at 2, 4, 8, 16 steps; factor 3 puts the second rung at 6, judged at 8.
    curves = {f"t{i}": {2: v, 4: v, 8: v, 16: v} for i, v in enumerate((0.4, 0.3, 0.2, 0.1))}
    table = pd.DataFrame({"run_id": list(curves), "dimension": 2, "multiply": False, "depth": 1,
                          "steps": 16, "train_seconds": 1.0})
    ended = successive_halving(table, curves, grace=2, reduction=3)
    assert ended.tolist() == [2, 2, 8, 16]  # 2 of 4 go on from 2 steps, 1 of 2 from 6 (at 8)
    # The sweep's scheduler decides from whole rungs: the order trials arrive in changes nothing.
    assert successive_halving(table.iloc[::-1].reset_index(drop=True),
                              curves, grace=2, reduction=3).tolist() == [16, 8, 2, 2]


@pytest.fixture(scope="module")
def full_budget_sweep(two_sweeps):
    """The results dir of a tiny --no-asha sweep named "full": four alike MLPs, one task (TINY_SWEEP),
    and its Ray timeline (TIMELINE). One of conftest's two_sweeps, which share the dir."""
    code, output = two_sweeps["ended"]["full"]
    assert code == 0, output[-3000:]
    return two_sweeps["results"]


@pytest.mark.slow
def test_asha_replay_runs_the_scheduler_on_recorded_curves(run_cli, full_budget_sweep):
    result = last_json(run_cli("benchmarks/asha_replay.py", "--json", "--full-dir", str(full_budget_sweep),
                               "--grace", "0.25,1", "--reduction", "2", "--synchronous",
                               "--rejudge", timeout=300))
    assert result["trials"] == 4 and len(result["settings"]) == 6
    # First rung at 8 of 32 steps, then at 32: ASHA, rejudged ASHA, synchronous halving each.
    some_pruning, rejudged, halving, no_rung, _, no_halving = result["settings"]
    assert rejudged["schedule"] == "rejudged"
    assert rejudged["compute_ratio_flops"] <= some_pruning["compute_ratio_flops"]
    assert 0 < some_pruning["compute_ratio_flops"] < 1 and some_pruning["tasks"] == 1
    # Four alike MLPs, rungs at 8 and 16 steps: all four pay 8 steps, two go on to 16, one to 32.
    assert halving["schedule"] == "synchronous"
    assert halving["samples_ratio"] == pytest.approx((4 * 8 + 2 * 8 + 1 * 16) / (4 * 32))
    # A first rung at the full budget stops nothing: the replay is the full-budget sweep itself.
    for row in (no_rung, no_halving):
        assert row["compute_ratio_flops"] == 1 and row["tasks_within_10_percent"] == 1


@pytest.mark.slow
def test_seed_spread_retrains_the_winner_as_the_sweep_did(run_cli, full_budget_sweep):
    # With the sweep's own seed the winner must come out exactly as the sweep trained it.
    result = last_json(run_cli("benchmarks/seed_spread.py", "--json", "--results-dir",
                               str(full_budget_sweep), "--name", "full", "--seeds", "0,3",
                               "--workers", "1", timeout=600))
    (winner,) = result["winners"]  # one task: d = 2, flag off
    assert result["sweep_seed"] == 0 and winner["dimension"] == 2 and winner["depth"] == 1
    assert winner["val_nmse_by_seed"]["0"] == winner["val_nmse_sweep"]
    # Seeds 3, 4, 5 (the sweep's trials had replicas 0, 1, 2): other runs, another median.
    assert winner["val_nmse_by_seed"]["3"] != winner["val_nmse_sweep"]
    values = [winner["val_nmse_sweep"], *winner["val_nmse_by_seed"].values()]
    assert winner["spread"] == pytest.approx(max(values) / min(values))


def test_seed_spread_rejects_a_missing_sweep(tmp_path, capsys):
    from benchmarks.seed_spread import main

    assert "no sweep named 'sweep'" in refusal(main, ["--results-dir", str(tmp_path)], capsys)
