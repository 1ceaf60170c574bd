"""Request bodies → model inputs: base64 images and the missing/unknown gene rule."""

import base64
import io

import numpy as np
import pytest
from PIL import Image

from oncoserve_runtime import ApiError, expression_vector, image_from_body

FEATURES = ["G1", "G2", "G3", "G4"]


def png_b64(img: Image.Image) -> str:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_base64_with_line_breaks_and_data_url_prefix_is_accepted():
    text = png_b64(Image.new("RGB", (5, 5), (1, 2, 3)))
    wrapped = "data:image/png;base64," + "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    out = image_from_body({"image": wrapped})
    assert np.asarray(out)[0, 0].tolist() == [1, 2, 3]
    # Windows line ends, tabs and spaces (PEM-style indentation) are whitespace too
    spaced = " \t" + "\r\n  ".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\r\n"
    assert np.asarray(image_from_body({"image": spaced}))[0, 0].tolist() == [1, 2, 3]


def test_invalid_base64_is_a_400():
    with pytest.raises(ApiError) as caught:
        image_from_body({"image": "not*base64"})
    assert (caught.value.status, caught.value.code) == (400, "invalid_base64")


def test_refused_url_never_fetches():
    with pytest.raises(ApiError) as caught:
        image_from_body({"url": "http://169.254.169.254/latest/meta-data/"})
    assert (caught.value.status, caught.value.code) == (422, "url_not_allowed")


def test_expression_is_ordered_by_the_model_features():
    vector, summary = expression_vector({"G3": 3, "G1": 1, "G2": 2, "G4": 4}, FEATURES)
    assert vector.dtype == np.float32 and vector.tolist() == [[1, 2, 3, 4]]
    assert summary == {"genes_used": 4, "genes_missing": 0, "coverage": 1.0}


def test_unknown_genes_are_refused_and_listed():
    with pytest.raises(ApiError) as caught:
        expression_vector({"G1": 1, "BRCA9": 2}, FEATURES)
    assert (caught.value.status, caught.value.code) == (422, "unknown_genes")
    assert caught.value.details["unknown"] == ["BRCA9"]


def test_missing_genes_below_coverage_are_refused_and_listed():
    with pytest.raises(ApiError) as caught:
        expression_vector({"G1": 1, "G2": 2}, FEATURES, fill_values=[0, 0, 0, 0], min_coverage=0.75)
    assert caught.value.code == "missing_genes"
    assert caught.value.details == {"missing_count": 2, "missing": ["G3", "G4"], "required_coverage": 0.75}


def test_missing_genes_above_coverage_are_filled_with_training_values():
    vector, summary = expression_vector({"G1": 1, "G2": 2, "G3": 3}, FEATURES, fill_values=[0, 0, 0, 9.5],
                                        min_coverage=0.75)
    assert vector.tolist() == [[1, 2, 3, 9.5]]
    assert summary["genes_missing"] == 1 and summary["coverage"] == 0.75


def test_strict_models_refuse_any_missing_gene():
    with pytest.raises(ApiError) as caught:
        expression_vector({"G1": 1, "G2": 2, "G3": 3}, FEATURES)
    assert caught.value.code == "missing_genes"


def test_case_insensitive_models_accept_hgnc_capitals_and_refuse_duplicates():
    vector, _ = expression_vector({"G1": 1, "g2": 2}, ["g1", "g2"], case_insensitive=True)
    assert vector.tolist() == [[1, 2]]
    with pytest.raises(ApiError) as caught:
        expression_vector({"G1": 1, "g1": 2, "g2": 0}, ["g1", "g2"], case_insensitive=True)
    assert caught.value.code == "duplicate_genes"


def test_the_compact_form_in_any_order_gives_the_same_vector():
    from oncoserve_runtime import ExpressionProfile

    mapping, _ = expression_vector({"G1": 1, "G2": 2, "G3": 3, "G4": 4}, FEATURES)
    ordered, _ = expression_vector(ExpressionProfile.from_body({"genes": FEATURES, "values": [1, 2, 3, 4]}), FEATURES)
    shuffled, _ = expression_vector(ExpressionProfile.from_body({"genes": ["G4", "G2", "G1", "G3"],
                                                                 "values": [4, 2, 1, 3]}), FEATURES)
    assert mapping.tolist() == ordered.tolist() == shuffled.tolist() == [[1, 2, 3, 4]]


def test_the_compact_form_refuses_unequal_lengths_and_repeated_genes():
    from oncoserve_runtime import ExpressionProfile

    with pytest.raises(ApiError) as caught:
        ExpressionProfile.from_body({"genes": ["G1", "G2"], "values": [1.0]})
    assert (caught.value.code, caught.value.details["rule"]) == ("invalid_request", "same_length_as_genes")
    with pytest.raises(ApiError) as caught:
        expression_vector(ExpressionProfile.from_body({"genes": ["G1", "G1"], "values": [1.0, 2.0]}), FEATURES)
    assert caught.value.code == "duplicate_genes" and caught.value.details["duplicates"] == ["G1"]
