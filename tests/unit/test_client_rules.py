"""The client's own rules: which answers are retried, which options a task takes (no server needed;
the client against the local API is tests/function/test_client.py)."""

import pytest

from oncoserve import ApiError, Client
from oncoserve.client import _options


@pytest.mark.parametrize("status, body, retried", [
    (429, {"message": "Too Many Requests"}, True),
    (429, {"message": "Limit Exceeded"}, False),
    (502, {"message": "Internal server error"}, True),
    (502, {"error": {"code": "url_unreachable", "message": "…"}}, False),
    (503, {"error": {"code": "model_unavailable", "message": "…"}}, True),
    (422, {"error": {"code": "missing_genes", "message": "…"}}, False),
    (403, {"message": "Forbidden"}, False),
])
def test_only_throttling_and_transient_server_answers_are_retried(status, body, retried):
    assert ApiError.from_answer(status, body).retryable is retried


def test_frame_zero_is_an_option_and_false_is_not():
    assert _options(frame=0, explain=False, modality=None) == {"frame": 0}


def test_an_option_a_task_does_not_take_is_refused_before_sending():
    with Client("http://127.0.0.1:9", "key", retries=0) as client:
        with pytest.raises(ValueError, match="skin takes no modality"):
            client.predict("skin", b"x", modality="ct")
    with pytest.raises(ValueError, match="retries"):
        Client("http://127.0.0.1:9", "key", retries=-1)
