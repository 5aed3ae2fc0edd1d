"""The READMEs a reader meets first: the answer table is answer.csv's, the figure is on the first
screen, each README within its length, and every file they link to exists."""

import re

import pandas as pd
import pytest

from dotmlp.study import readme
from tests.conftest import ROOT

README, RESULTS, BENCHMARKS = (ROOT / "README.md", ROOT / "results" / "README.md",
                               ROOT / "benchmarks" / "README.md")
LIMITS = {README: 12_000, RESULTS: 15_000, BENCHMARKS: 15_000}


def answer_rows(tasks: dict) -> pd.DataFrame:
    """An answer.csv as dotmlp.study.frontier writes it, a row per (d, ε, depth) in tasks."""
    rows = []
    for (d, eps, depth), fields in tasks.items():
        k = 4 if eps == 1e-2 else 8
        rows.append({"dimension": d, "multiply": False, "threshold": eps, "depth": depth,
                     "construction_hidden": 2 * d * k, "construction_params": 2 * d * k * (2 * d + 2) + 1,
                     "status": "decided", "reached": None, "width": None, "params": None, "samples": None,
                     "price": None, "max_width_tried": None, "max_samples_tried": None, **fields})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("path", [README, RESULTS])
def test_the_answer_table_is_answer_csvs(path):
    text = path.read_text()
    if path is RESULTS and readme.BEGIN not in text:
        pytest.skip("results/README.md links to the README's table")
    expected = readme.readme_table(pd.read_csv(ROOT / readme.ANSWER))
    assert readme.block(text) == expected, f"{path.name}'s table is stale: run python -m dotmlp.study.readme"


def test_every_number_in_a_row_is_the_answers():
    reached = {"reached": True, "width": 256, "params": 16_897, "samples": 33_554_432, "price": 1.0,
               "max_width_tried": 1024, "max_samples_tried": 134_217_728}
    tasks = {
        (32, 1e-2, 1): reached,
        (32, 1e-2, 2): {**reached, "width": 180, "params": 44_461, "samples": 8_388_608, "price": 2.631},
        (32, 1e-3, 1): {"reached": False, "max_width_tried": 2048, "max_samples_tried": 134_217_728},
        (32, 1e-3, 2): {"reached": False, "max_width_tried": 724, "max_samples_tried": 67_108_864},
        (64, 1e-2, 1): {**reached, "width": 600, "params": 78_601, "samples": 2_097_152, "price": 1.181},
        (64, 1e-2, 2): {"status": "in progress"},
        (64, 1e-3, 1): {"status": "in progress"},
        (64, 1e-3, 2): {"status": "in progress"},
    }
    answer = answer_rows(tasks)
    flag = {"dimension": 32, "multiply": True, "threshold": 1e-2, "depth": 0, "reached": True,
            "params": 97, "samples": 65_536, "status": "decided"}  # a·b fed: not in the table
    answer = pd.concat([answer, pd.DataFrame([flag])], ignore_index=True)
    table = readme.readme_table(answer).splitlines()
    assert len(table) == 4  # the head, its rule, d = 32 and d = 64
    cells = [cell.strip() for cell in table[2].strip("|").split("|")]
    assert cells == ["32", "1 × 256, 16,897 params", "1 × 256, 16,897 params (1× hand-built)",
                     "33,554,432", "1 × 512, 33,793 params",
                     "not reached by 1 × 2048, 2 × 724 (a bound)", "> 134,217,728"]
    cells = [cell.strip() for cell in table[3].strip("|").split("|")]
    assert cells == ["64", "1 × 512, 66,561 params", "in progress (so far 1 × 600, 78,601 params)",
                     "in progress", "1 × 1024, 133,121 params", "in progress", "in progress"]


def test_the_grid_studys_answer_is_refused():
    grid = pd.DataFrame([{"dimension": 1, "multiply": False, "threshold": 1e-2, "reached": True,
                          "params": 67, "samples": 65_536, "architecture": "2x6"}])
    with pytest.raises(ValueError, match="frontier"):
        readme.readme_table(grid)


def test_the_cli_rewrites_only_the_block(tmp_path):
    answer = tmp_path / "answer.csv"
    pd.read_csv(ROOT / readme.ANSWER).to_csv(answer, index=False)
    page = tmp_path / "page.md"
    page.write_text(f"# Title\n\nbefore\n\n{readme.BEGIN}\nold table\n{readme.END}\n\nafter\n")
    readme.main(["--answer", str(answer), "--readme", str(page)])
    text = page.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith(f"{readme.END}\n\nafter\n")
    assert readme.block(text) == readme.readme_table(pd.read_csv(answer))
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, then renamed
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    with pytest.raises(SystemExit) as exit_:
        readme.main(["--answer", str(answer), "--readme", str(bare)])
    assert exit_.value.code == 2 and bare.read_text() == "no markers\n"


@pytest.mark.parametrize("path", list(LIMITS), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_readme_is_within_its_length(path):
    assert len(path.read_text()) <= LIMITS[path], f"{path.name}: {len(path.read_text())} characters"


def test_the_answer_figure_is_on_the_first_screen():
    first = README.read_text().splitlines()[:60]
    assert any("](results/answer.png)" in line for line in first)


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("path", [README, RESULTS, BENCHMARKS, *sorted((ROOT / "docs").glob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_a_readme_links_to_exists(path):
    missing = [target for target in LINK.findall(path.read_text())
               if not target.startswith(("http://", "https://")) and not (path.parent / target).exists()]
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"
