"""The paper's grid for Rendle et al.'s Figure 3 (dotmlp.rendle_grid, sweep/rendle.py --grid paper):
its plan and order, the statistics over seeds, the table (atomic, resumable, with the rows written
before the protocol was recorded), the figures drawn from a table alone."""

import itertools
import math

import pandas as pd
import pytest

from dotmlp import rendle_grid as grid
from tests.conftest import ROOT


def test_the_paper_plan_is_its_72_points_in_the_issues_order():
    plan = grid.paper_plan()
    assert len(plan) == len(set(plan)) == 72
    assert set(plan) == set(itertools.product(grid.PAPER_DIMENSIONS, grid.PAPER_USERS, grid.PAPER_MS))
    first, second = plan[:18], plan[18:38]
    # m = 1 for d = 16, 32, 64 at every pool size, smallest pools first.
    assert {(d, m) for d, _, m in first} == {(16, 1), (32, 1), (64, 1)}
    assert [u for _, u, _ in first] == sorted(u for _, u, _ in first)
    # Then m = 2, 4 at d = 16, 32 up to 64,000 users.
    assert {(d, m) for d, _, m in second} == {(16, 2), (16, 4), (32, 2), (32, 4)}
    assert max(u for _, u, _ in second) == 64_000 and len(second) == 5 * 4
    # The rest cheapest first: its first is smaller than its last.
    rest = plan[38:]
    cost = [u * grid.paper_params(d, m) for d, u, m in rest]
    assert cost == sorted(cost)


@pytest.mark.parametrize("d, m, multiply", [(16, 1, False), (32, 4, False), (64, 2, True)])
def test_paper_params_count_the_papers_mlp(d, m, multiply):
    from dotmlp.model import DotMLP, parameter_count
    from dotmlp.train import rendle_hidden

    assert grid.paper_params(d, m, multiply) == parameter_count(DotMLP(d, rendle_hidden(m, d), multiply))


def test_seed_stats_mean_is_the_point_and_a_diverged_seed_makes_it_inf():
    stats = grid.seed_stats([0.9, 0.8, 1.0, 0.95, 0.85])
    assert stats == pytest.approx({"mean": 0.9, "median": 0.9, "min": 0.8, "max": 1.0})
    # replica_stats's rule: NaN counts as +inf wherever it is; the mean is then inf, not hidden.
    diverged = grid.seed_stats([0.9, math.nan, 1.0, 0.95, 0.85])
    assert diverged["mean"] == math.inf and diverged["max"] == math.inf
    assert diverged["median"] == 0.95 and diverged["min"] == 0.85
    assert grid.seed_stats([0.9, 1.0])["median"] == 0.9  # the lower middle of an even number


def row(d=16, users=4000, m=1, multiply=False, seeds=5, test=0.9, **extra):
    values = [test + 0.01 * (k - seeds // 2) for k in range(seeds)]
    dots = [0.85 + 0.001 * k for k in range(seeds)]
    base = {"dimension": d, "users": users, "m": m, "multiply": multiply, "epochs": 32,
            "batch_size": 256, "lr": 0.001, "init": "glorot", "sampling": "reference", "seeds": seeds,
            "params": grid.paper_params(d, m, multiply), "steps": 1, "diverged": 0, "seconds": 1.0,
            "cpu_seconds": 2.0, "cpu": "test cpu", "threads": 1, "device": "cpu"}
    for metric, shift in (("train_rmse", -0.05), ("test_rmse", 0.0), ("fresh_rmse", 0.02)):
        mine = [v + shift for v in values]
        base.update({f"{metric}_{stat}": value for stat, value in grid.seed_stats(mine).items()})
        base[f"{metric}_values"] = grid.format_values(mine)
    for name in grid.REFERENCE_METRICS:
        ref = dots if name.startswith("dot") else [1.13] * seeds
        base[name] = base[f"{name}_mean"] = sum(ref) / seeds
        base[f"{name}_values"] = grid.format_values(ref)
    for name in grid.NMSE_METRICS:
        base[name] = base[f"{name}_mean"] = 0.1
    return {**base, **extra}


def test_rows_are_appended_atomically_and_finished_points_are_not_run_again(tmp_path):
    table = tmp_path / "paper_grid.csv"
    grid.append_row(table, row(users=4000))
    grid.append_row(table, row(users=8000, seeds=3))
    rows = grid.read_table(table)
    assert len(rows) == 2 and not list(tmp_path.glob(".*partial"))
    run = {k: row()[k] for k in (*grid.KEY, "seeds")}
    assert grid.done(rows, run)                                   # 5 seeds at 4,000 users
    assert not grid.done(rows, {**run, "users": 8000})             # 3 of 5 seeds
    assert grid.done(rows, {**run, "users": 8000, "seeds": 3})
    assert not grid.done(rows, {**run, "init": "default"})         # another protocol, another point
    assert not grid.done(rows, {**run, "sampling": "uniform"})
    # More seeds replace the row, never add a second one.
    grid.append_row(table, row(users=8000, seeds=5))
    rows = grid.read_table(table)
    assert len(rows) == 2 and grid.done(rows, {**run, "users": 8000})
    frame = grid.load(rows)
    assert list(frame["cpu"]) == ["test cpu"] * 2 and (frame["cpu_seconds"] == 2.0).all()
    assert frame["point_test_rmse"].tolist() == pytest.approx([0.9, 0.9])


def test_the_paper_grid_resumes_from_its_table(run_cli, tmp_path):
    # Two points finished (one of them in the first phase's first place), the rest to do: --list
    # says so without running anything, and a run would skip exactly those.
    for users in (4000, 8000):
        grid.append_row(tmp_path / "paper_grid.csv", row(users=users))
    proc = run_cli("sweep/rendle.py", "--grid", "paper", "--list", "--out", str(tmp_path), timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("done  d=16 U=4000 m=1") and lines[3].startswith("done  d=16 U=8000 m=1")
    assert sum(line.startswith("done") for line in lines) == 2
    assert sum(line.startswith("todo") for line in lines) == 70
    assert lines[-1].startswith("2 of 72 points done")
    # Another protocol is another grid: none of its points is done.
    other = run_cli("sweep/rendle.py", "--grid", "paper", "--list", "--init", "default", "--dimensions",
                    "16", "--ms", "1", "--out", str(tmp_path), timeout=120)
    assert other.returncode == 0 and other.stdout.splitlines()[-1].startswith("0 of 6 points done")


def test_a_tiny_grid_writes_the_mean_median_range_and_cost_and_resumes(run_cli, tmp_path):
    args = ("sweep/rendle.py", "--dimensions", "2", "--ms", "1", "--users", "12", "--seeds", "3",
            "--epochs", "1", "--workers", "1", "--no-figure", "--out", str(tmp_path))
    proc = run_cli(*args, timeout=300)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(tmp_path / "rendle.csv")
    (point,) = table.itertuples()
    assert (point.init, point.sampling, point.seeds) == ("glorot", "reference", 3)
    values = [float(v) for v in point.test_rmse_values.split(";")]
    assert point.test_rmse_mean == pytest.approx(sum(values) / 3, rel=1e-4)
    assert point.test_rmse_median == pytest.approx(sorted(values)[1], rel=1e-4)
    assert point.test_rmse_min <= point.test_rmse_median <= point.test_rmse_max
    assert len(point.dot_test_rmse_values.split(";")) == 3
    assert point.cpu_seconds > 0 and point.cpu == grid.cpu_name() and point.device == "cpu"
    again = run_cli(*args, timeout=300)
    assert again.returncode == 0 and "1 already in" in again.stdout
    assert pd.read_csv(tmp_path / "rendle.csv").equals(table)  # nothing trained again


def test_the_committed_table_reads_as_pytorch_init_and_uniform_sampling():
    # rendle.csv's 26 points were run before the protocol was recorded, with the median of 3.
    frame = grid.load(grid.read_table(ROOT / "results" / "rendle" / "rendle.csv"))
    assert len(frame) >= 26
    old = frame[frame["test_rmse_mean"].isna()]
    assert len(old) == 26
    assert set(old["init"]) == {"default"} and set(old["sampling"]) == {"uniform"}
    assert (old["point_test_rmse"] == old["test_rmse_median"]).all()
    assert "– (0.925; 0.888–0.940)" in grid.markdown(old)


def test_the_figures_draw_from_a_small_synthetic_table(tmp_path):
    rows = [row(d=d, users=u, m=m, test=0.85 + 0.02 * d / 16 - 0.01 * math.log2(u / 4000))
            for d, u, m in itertools.product((16, 32), (4000, 8000, 16000), (1, 2))]
    rows += [row(d=32, users=u, m=1, multiply=True, test=0.86) for u in (4000, 8000)]
    rows += [{**row(d=64, users=4000, m=1), "init": "default", "sampling": "uniform"}]  # another protocol
    path = tmp_path / "paper_grid.csv"
    grid.write_table(path, rows)
    table = grid.load(grid.read_table(path))
    grid.paper_figure(table, tmp_path / "paper.png")
    grid.additions_figure(table, tmp_path / "additions.png")
    for name in ("paper.png", "additions.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    protocol, words = grid._protocol(table)
    assert len(protocol) == len(rows) - 1 and "init glorot, sampling reference" in words
    # The gap plotted is the mean over seeds of MLP minus dot product; the band each seed's own.
    point = next(protocol.itertuples())
    gaps = grid.seed_differences(point, "test_rmse", "dot_test_rmse")
    assert sum(gaps) / len(gaps) == pytest.approx(point.point_test_rmse - point.point_dot_test_rmse)
    # With no a·b rows and only legacy rows (no per-seed values) it still draws.
    legacy = grid.load(grid.read_table(ROOT / "results" / "rendle" / "rendle.csv"))
    grid.additions_figure(legacy[~legacy["multiply"]], tmp_path / "legacy.png")
    assert (tmp_path / "legacy.png").stat().st_size > 10_000


def test_the_throughput_benchmark_compares_the_point_with_its_bare_loop(run_cli):
    proc = run_cli("benchmarks/rendle_throughput.py", "--users", "100", "--dimension", "2", "--m", "1",
                   "--seeds", "2", "--steps", "50", "--json", timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["timed_steps"] == 25 and result["sampling"] == "reference" and result["init"] == "glorot"
    assert result["ratio"] > 0 and result["bare_replica_samples_per_s"] > 0


def test_commit_table_commits_the_table_alone(tmp_path):
    import subprocess

    def git(*args):
        return subprocess.run(["git", *args], cwd=tmp_path, capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "test@example.com")
    git("config", "user.name", "test")
    (tmp_path / "other.txt").write_text("someone else's work\n")
    git("add", "other.txt")  # staged by someone else: must stay staged, out of the commit
    table = tmp_path / "paper_grid.csv"
    grid.append_row(table, row())
    assert grid.commit_table(table, "issue 36: paper_grid.csv: d=16 U=4000 m=1")
    assert git("show", "--name-only", "--format=%s", "HEAD").split() == [
        "issue", "36:", "paper_grid.csv:", "d=16", "U=4000", "m=1", "paper_grid.csv"]
    assert git("diff", "--cached", "--name-only").split() == ["other.txt"]
    grid.append_row(table, row(users=8000))
    assert grid.commit_table(table, "issue 36: second")
    assert git("rev-list", "--count", "HEAD").strip() == "2"
