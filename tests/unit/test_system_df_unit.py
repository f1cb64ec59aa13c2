"""``system df``'s figures as docker prints them (cli/system_df.py) and the size walk
(engine.usage.tree_size) that never follows a link a container could plant."""
import os

import pytest

from pyrt_core.cli.containers import system_df
from pyrt_core.engine.usage import tree_size


@pytest.mark.parametrize("n, text", [
    (0, "0B"), (212, "212B"), (999, "999B"), (1000, "1kB"), (16_430_000, "16.43MB"),
    (1_234_567, "1.235MB"), (300_000, "300kB"), (5 * 10**12, "5TB"),
])
def test_human_size_is_dockers(n, text):
    assert system_df.human_size(n) == text


def test_rows_and_table():
    rows = system_df.rows_text([
        {"Type": "Images", "TotalCount": 5, "Active": 2, "Size": 16_430_000,
         "Reclaimable": 11_630_000},
        {"Type": "Containers", "TotalCount": 0, "Active": 0, "Size": 0, "Reclaimable": 0},
        {"Type": "Build Cache", "TotalCount": 0, "Active": 0, "Size": 0, "Reclaimable": 0}])
    assert rows[0] == {"Type": "Images", "TotalCount": "5", "Active": "2", "Size": "16.43MB",
                       "Reclaimable": "11.63MB (70%)"}
    assert rows[1]["Reclaimable"] == "0B" and rows[2]["Reclaimable"] == "0B"
    assert system_df.render_table(rows) == (
        "TYPE          TOTAL     ACTIVE    SIZE      RECLAIMABLE\n"
        "Images        5         2         16.43MB   11.63MB (70%)\n"
        "Containers    0         0         0B        0B\n"
        "Build Cache   0         0         0B        0B\n")


def test_prompt_lists_what_goes():
    t = system_df.prompt_text(all_images=True, volumes=True, networks=False)
    assert t == ("WARNING! This will remove:\n  - all stopped containers\n"
                 "  - all anonymous volumes not used by at least one container\n"
                 "  - all images without at least one container associated to them\n"
                 "\nAre you sure you want to continue? [y/N] ")


def test_tree_size_counts_files_once_and_follows_no_link(tmp_path):
    d = tmp_path / "data"
    (d / "sub" / "deep").mkdir(parents=True)
    (d / "a").write_bytes(b"x" * 1000)
    (d / "sub" / "deep" / "b").write_bytes(b"y" * 234)
    os.link(d / "a", d / "sub" / "a-again")  # a hard link: counted once
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big").write_bytes(b"z" * 100_000)
    os.symlink(str(outside), d / "link-dir")  # planted links: never followed
    os.symlink(str(outside / "big"), d / "link-file")
    links = len(str(outside)) + len(str(outside / "big"))
    assert tree_size(str(d)) == 1234 + links
    assert tree_size(str(tmp_path / "missing")) == 0
    assert tree_size(str(d / "link-dir")) == 0  # the top itself a link: refused
