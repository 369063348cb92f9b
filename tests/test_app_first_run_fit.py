"""A first-time user's window at the default size (1200×800) and at the smallest usable one
(1000×680): after the demo import, every tab is shown at both sizes, photographed into
test-output/first_run_fit/, and checked for text cut off and for the program's own words
(raw roles, hex ids, command-line flags, paths of this machine): `tests/window_checks.py`.
The whole path with training is `test_app_guided_path.py`, which runs the same checks."""

from __future__ import annotations

import pytest
from window_checks import check_window, machine_paths

from tests.waits import WORK_TIMEOUT_MS


@pytest.mark.slow
@pytest.mark.usefixtures("qasync_loop")
def test_every_tab_reads_at_the_default_size_and_stays_usable_smaller(
    window, qtbot, test_output_dir, isolated_user_dirs
):
    folder = test_output_dir / "first_run_fit"
    paths = machine_paths(isolated_user_dirs)
    problems = check_window(window, qtbot, folder, "0_fresh_start", paths)
    data_tab = window.data_tab
    with qtbot.waitSignal(data_tab.importFinished, timeout=WORK_TIMEOUT_MS):
        window.load_demo_data()
    qtbot.waitUntil(
        lambda: window.workspace is not None and window.workspace.count_conversations() > 0, timeout=WORK_TIMEOUT_MS
    )
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        name = window.tabs.tabText(index).replace("&", "").replace(" ", "_").lower()
        problems += check_window(window, qtbot, folder, f"{index + 1}_{name}", paths)
    assert not problems, "\n".join(problems)
