"""ParameterFields: a template's parameters as fields checked as the user types."""

from __future__ import annotations

import pytest

from components.parameters import ParameterFields
from services import ValidationError
from services.templates import ParameterSpec

SPECS = {
    "replay_start": ParameterSpec("replay_start", "str", "", "Where to start.",
                                  label="Replay from"),
    "venue_name": ParameterSpec("venue_name", "str", "SIM", "The venue.", label="Venue name"),
    "memory_limit_mb": ParameterSpec("memory_limit_mb", "int", 1024, "Memory.", min=256,
                                     max=65536, label="Memory limit", unit="MiB"),
}


def test_an_optional_text_field_may_stay_empty_but_a_required_one_may_not():
    fields = ParameterFields(specs=SPECS)

    fields.values.replay_start = ""
    fields.values.venue_name = ""

    assert fields.problems == {"venue_name": "Venue name: enter a value (e.g. SIM)"}


def test_the_hint_in_an_empty_field_is_its_default_or_says_it_is_optional():
    form, grid = ParameterFields(specs=SPECS), ParameterFields(specs=SPECS, grid=True)

    placeholders = {name: form.section([name]).objects[0].placeholder for name in SPECS}
    assert placeholders == {"replay_start": "optional", "venue_name": "e.g. SIM",
                            "memory_limit_mb": "e.g. 1024"}
    assert grid.section(["replay_start"]).objects[0].placeholder == "default: empty"


def test_a_number_out_of_its_bounds_is_named_by_its_label_and_refused_on_submission():
    fields = ParameterFields(specs=SPECS)

    fields.values.memory_limit_mb = "100"

    assert fields.problems == {"memory_limit_mb": "Memory limit: must be >= 256, was '100'"}
    with pytest.raises(ValidationError) as refused:
        fields.submitted()
    assert refused.value.problems == ["Memory limit: must be >= 256, was '100'"]


def test_submitted_values_have_the_parameters_types():
    fields = ParameterFields(specs=SPECS)
    fields.values.memory_limit_mb = " 2048 "

    assert fields.submitted() == {"replay_start": "", "venue_name": "SIM", "memory_limit_mb": 2048}


def test_a_section_holds_only_its_fields_each_with_its_error_line():
    fields = ParameterFields(specs=SPECS)

    section = fields.section(["memory_limit_mb"])

    assert [w.name for w in section.objects[::2]] == ["Memory limit (MiB)"]
    assert len(section.objects) == 2 and not section.objects[1].visible
