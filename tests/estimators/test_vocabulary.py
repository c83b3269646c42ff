"""The vocabularies estimates map onto (schemas/demographics.yaml) and how a corpus's own values normalise."""

import pytest

from emopipe.estimators.vocabulary import attributes, vocabularies


def test_the_attributes_an_estimator_may_estimate():
    assert attributes() == ("gender", "age_group", "skin_tone")
    assert vocabularies()["skin_tone"].values[0] == "monk_01" and len(vocabularies()["skin_tone"].values) == 10


@pytest.mark.parametrize(
    ("attribute", "value", "expected"),
    [
        ("gender", "Female", "female"),
        ("gender", " M ", "male"),
        ("gender", "woman", "female"),
        ("gender", "non-binary", None),  # outside the vocabulary: counted, never compared
        ("age_group", "18-30", "18-30"),
        ("age_group", "27", "18-30"),
        ("age_group", "25-29", "18-30"),
        ("age_group", "30-39", None),  # straddles two groups
        ("age_group", "70", "61+"),
        ("age_group", "old", None),
        ("skin_tone", "3", "monk_03"),
    ],
)
def test_a_corpus_value_normalises_onto_the_vocabulary_or_falls_outside(attribute, value, expected):
    assert vocabularies()[attribute].normalise(value) == expected
