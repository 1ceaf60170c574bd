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


def test_a_batch_row_keeps_the_guards_verdict_refused_or_answered():
    from oncoserve.batch import COLUMNS, _row

    refused = ApiError.from_answer(422, {"error": {"code": "out_of_distribution", "message": "…", "details": {
        "ood": {"score": 9.5, "threshold": 5.4, "atypical_threshold": 4.4, "status": "out_of_distribution"}}}})
    row = _row("a.png", "skin", error=refused)
    assert (row["status"], row["error_code"], row["ood_status"], row["ood_score"]) == (
        "error", "out_of_distribution", "out_of_distribution", 9.5)
    answered = _row("b.png", "skin", answer={"label": "benign", "probabilities": {"benign": 0.9},
                                              "ood": {"score": 1.2, "status": "in_distribution"}})
    assert (answered["status"], answered["ood_status"], answered["ood_score"]) == ("ok", "in_distribution", 1.2)
    assert set(row) <= set(COLUMNS) and set(answered) <= set(COLUMNS)


@pytest.mark.parametrize("answers, sent", [
    ([(429, {"message": "Too Many Requests"}), (202, {"job": {"id": "a"}})], 2),  # throttled: never ran, sent again
    ([(502, {"message": "Internal server error"}), (202, {"job": {"id": "b"}})], 1),  # may have started: not sent again
])
def test_a_job_is_submitted_again_only_when_it_cannot_have_started(answers, sent):
    import httpx

    calls = []

    def answer(request):
        calls.append(request)
        status, body = answers[len(calls) - 1]
        return httpx.Response(status, json=body)

    client = Client("http://127.0.0.1:9", "key", retries=3, sleep=lambda _: None)
    client._http = httpx.Client(base_url="http://127.0.0.1:9", transport=httpx.MockTransport(answer))
    try:
        job = client.submit_job("skin", "predict", {"bucket": "b-1", "prefix": "x/"})
        assert job == answers[-1][1]["job"]
    except ApiError as refused:
        assert refused.status == 502
    assert len(calls) == sent
