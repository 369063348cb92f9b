"""The plots' x axes count steps and epochs, so their ticks fall on whole numbers."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("last_x", [2, 3, 7, 180])
def test_x_ticks_are_whole_numbers_for_short_and_long_runs(qtbot, last_x):
    from app.widgets.live_plot import LivePlot

    plot = LivePlot("Held-out scores", x_label="epoch")
    qtbot.addWidget(plot)
    plot.resize(600, 300)
    axis = plot.plot_widget.getPlotItem().getAxis("bottom")
    ticks = [value for _spacing, values in axis.tickValues(0.9, last_x + 0.1, 500) for value in values]
    assert ticks, "an axis without ticks"
    assert all(float(value).is_integer() for value in ticks), ticks
    labels = axis.tickStrings([ticks[0]], 1.0, 1.0)
    assert "." not in labels[0]  # "2", not "2.0"
    if last_x <= 7:  # a short run labels every epoch it has
        assert {1, last_x} <= {round(value) for value in ticks}
