"""The colour system's helpers (figures worked by hand)."""

from __future__ import annotations

from components.theme import GAIN, translucent


def test_a_translucent_tint_keeps_the_colour_and_lets_the_background_through():
    assert translucent("#2e9d4f", 0.25) == "rgba(46, 157, 79, 0.25)"
    assert translucent("#FFFFFF", 1.0) == "rgba(255, 255, 255, 1)"
    assert translucent(GAIN, 0.5).endswith(", 0.5)")
