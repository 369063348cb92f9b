"""The style map rings the person's own messages and says so in the legend and on hover."""

import numpy as np

from app.widgets.style_map import PERSON_COLOR, SIDE_COLORS, MapPoint, StyleMap


def test_the_persons_messages_are_ringed(qtbot):
    widget = StyleMap()
    qtbot.addWidget(widget)
    points = [
        MapPoint("c1", 0, "user", "hey, are we still on?", person=False),
        MapPoint("c1", 1, "user", "yes! 7pm", person=True),
        MapPoint("c2", 0, "user", "running late", person=True),
    ]
    widget.set_points(np.random.default_rng(0).normal(size=(3, 8)), points)
    pens = [spot.pen() for spot in widget.scatter.points()]
    assert [pen.color().name() == PERSON_COLOR for pen in pens] == [False, True, True]
    assert "you (your messages)" in [label.text for _, label in widget.legend.items]
    assert "(you)" in widget.hover_text(1) and "(them)" in widget.hover_text(0)
    assert [color == SIDE_COLORS["you"] for color in widget.point_colors()] == [False, True, True]
