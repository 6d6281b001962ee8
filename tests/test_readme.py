"""The README tells the truth about settings (no model)."""

import re
from pathlib import Path

from qa.config import Config

README = Path(__file__).parents[1] / "README.md"


def test_every_setting_the_readme_names_is_a_real_one_with_that_default():
    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names = set(Config.model_fields)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "`QA_" in line]
    assert len(rows) >= 10
    for row in rows:
        for variable in re.findall(r"`QA_([A-Z0-9_]+)`", row):
            assert variable.lower() in names, row
    fields = Config.model_fields
    for name in ("n_parallel", "top_k", "n_ctx", "caution", "speculative", "log_level"):
        variable, value = f"QA_{name.upper()}", fields[name].default
        (row,) = [r for r in rows if f"`{variable}`" in r]  # every one has its row
        assert f"`{value}`" in row, row


def test_the_readme_is_a_guide_a_newcomer_reads_in_minutes():
    assert len(README.read_text().split()) <= 2000
