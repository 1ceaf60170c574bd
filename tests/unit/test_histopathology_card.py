"""The histopathology card's verdicts come from the numbers: 'met' only at or above the bound."""

from train.histopathology.card import conversion_note, goal_text


def test_goal_text_says_met_and_beaten_only_where_the_figures_reach_them():
    text = goal_text({"balanced_accuracy": 0.8708, "sensitivity": 0.8922, "accuracy": 0.8601, "specificity": 0.8493})
    assert "balanced accuracy ≥ 0.88 (0.871, **not met**)" in text
    assert "sensitivity ≥ 0.88 (0.892, met)" in text
    assert "accuracy 0.860 vs 0.86 (level)" in text  # as printed, three decimals
    assert "sensitivity 0.892 vs 0.85 (beaten)" in text and "specificity 0.849 vs 0.85 (not beaten)" in text
    assert "(0.880, met)" in goal_text({"balanced_accuracy": 0.88, "sensitivity": 0.88, "accuracy": 0.9,
                                        "specificity": 0.9})


def test_conversion_note_names_the_lossy_variants_and_why_one_ships():
    def variant(auc: float, ms: float) -> dict:
        return {"test_auc": auc, "latency_ms_256_patches_1_thread": ms}

    lossy_int8 = {"variants": {"float32": variant(0.90, 180), "float16": variant(0.90, 166), "int8": variant(0.55, 199)},
                  "shipped": "float16"}
    assert conversion_note(lossy_int8) == "int8 loses more than 0.005 test AUC. float16 is the fastest of the rest and ships:"
    smaller = {"variants": {"float32": variant(0.94, 160), "float16": variant(0.94, 170), "int8": variant(0.936, 175)},
               "shipped": "int8"}
    assert conversion_note(smaller) == "int8 runs within 10% of the fastest (float32) in a smaller file, so it ships:"
