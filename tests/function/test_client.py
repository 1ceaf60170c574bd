"""The oncoserve client and CLI against the local API (not a mock): typed calls, errors with the
API's code, retries on throttling only, and a resumable batch with a progress bar."""

from __future__ import annotations

import base64
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.registry import TASKS
from local.events import EVENTS_DIR
from local.running import LocalApi
from oncoserve import ApiError, Client
from tests.conftest import CONTRACT_KEY

CLI = str(Path(sys.executable).with_name("oncoserve"))


def _event_file_bytes(relative: str) -> bytes:
    return base64.b64decode(json.loads(json.loads((EVENTS_DIR / relative).read_text())["body"])["image"])


@pytest.fixture(scope="module")
def client(contract_api):
    with Client(contract_api.url, CONTRACT_KEY) as api:
        yield api


def test_a_file_over_the_inline_limit_goes_by_presigned_upload_with_the_same_answer(client, monkeypatch):
    import oncoserve.client

    image = _event_file_bytes("skin/ok_dicom_colour.json")
    inline = client.skin(image, ood="report")
    uploads = []
    real_upload = Client.upload
    monkeypatch.setattr(Client, "upload", lambda self, task, data: uploads.append(task) or real_upload(self, task, data))
    monkeypatch.setattr(oncoserve.client, "MAX_INLINE_BYTES", len(image) - 1)  # as if it were a 5 MB file
    assert client.skin(image, ood="report") == inline
    assert uploads == ["skin"]
    reference = client.upload("brain", image)
    assert reference["key"].startswith("uploads/brain/") and reference["key"].endswith(".dcm")


def test_an_image_from_a_path_bytes_or_options(client, tmp_path):
    scan = tmp_path / "ct.dcm"
    scan.write_bytes(_event_file_bytes("brain/ok_dicom_ct.json"))
    # a synthetic phantom: the brain model's guard refuses it, unless asked to report
    with pytest.raises(ApiError) as refused:
        client.brain(scan)
    assert refused.value.code == "out_of_distribution" and refused.value.details["ood"]["score"] > 0
    answer = client.brain(scan, explain=True, ood="report")
    assert answer["task"] == "brain" and answer["label"] in ("tumor", "healthy")
    assert answer["ood"]["status"] == "out_of_distribution"
    assert answer["modality"] == {"value": "ct", "source": "dicom"} and answer["dicom"]["modality"] == "CT"
    assert base64.b64decode(answer["explanation"]["heatmap_png"])[:4] == b"\x89PNG"
    colour = client.skin(_event_file_bytes("skin/ok_dicom_colour.json"), ood="report")  # the phantom again
    assert colour["label"] in ("benign", "melanoma") and client.retried == 0


def test_refusals_raise_with_the_api_code_and_are_not_retried(client):
    with pytest.raises(ApiError) as caught:
        client.skin(b"%PDF-1.4 not an image")
    assert (caught.value.status, caught.value.code) == (415, "not_an_image")
    with pytest.raises(ApiError) as caught:
        client.skin("http://169.254.169.254/latest/meta-data/")  # refused by the URL guard, never fetched
    assert caught.value.code == "url_not_allowed"
    with pytest.raises(ApiError) as caught:
        client.leukemia({"AFFX-BioB-5_at": 1.0})
    assert caught.value.code == "missing_genes" and caught.value.details["missing_count"] == 7128
    assert client.retried == 0


def test_expression_from_a_mapping_and_a_csv_file(client, shared_data, tmp_path):
    body = json.loads((EVENTS_DIR / "generated" / "leukemia" / "ok_aml.body.json").read_text())
    profile = body["expression"]
    from_mapping = client.leukemia(profile)
    table = tmp_path / "profile.csv"
    table.write_text("gene,value\n" + "".join(f"{gene},{value}\n" for gene, value in profile.items()))
    from_csv = client.leukemia(table)
    assert from_mapping["label"] == from_csv["label"] == "AML"
    assert from_mapping["probabilities"] == from_csv["probabilities"]
    assert from_csv["input"]["coverage"] == 1.0


def test_breast_survival_with_clinical_values_through_the_client_and_cli(client, contract_api, shared_data, tmp_path):
    body = json.loads((EVENTS_DIR / "generated" / "breast_survival" / "ok_patient_with_clinical.body.json").read_text())
    with_clinical = client.predict("breast-survival", body["expression"], clinical=body["clinical"])
    assert with_clinical["predictor"] == "clinical_and_expression" and with_clinical["clinical"]["imputed"] == []
    assert client.breast_survival(body["expression"])["predictor"] == "expression_only"
    (tmp_path / "clinical.json").write_text(json.dumps(body["clinical"]))
    (tmp_path / "profile.json").write_text(json.dumps({"expression": body["expression"]}))
    run = subprocess.run([CLI, "--url", contract_api.url, "--api-key", CONTRACT_KEY, "predict", "breast-survival",
                          str(tmp_path / "profile.json"), "--clinical", str(tmp_path / "clinical.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["risk"] == pytest.approx(with_clinical["risk"])


def test_models_and_health(client):
    models = client.models()
    assert set(models) == set(TASKS)
    assert models["brain"]["labels"] == ["healthy", "tumor"] and len(models["leukemia"]["input"]["features"]) == 7129
    assert client.health("breast-survival")["status"] == "ready"


def test_throttling_is_retried_with_backoff_and_a_spent_quota_is_not(tmp_path):
    api = LocalApi([sys.executable, "-m", "local.serve", "leukemia"],
                   env={"API_KEY": "k", "ONCOSERVE_THROTTLE_RATE_LIMIT": "2", "ONCOSERVE_THROTTLE_BURST_LIMIT": "1",
                        "ONCOSERVE_QUOTA_PER_DAY": "6"}, log_path=tmp_path / "api.log").start()
    try:
        slept: list[float] = []

        def sleep(seconds: float) -> None:
            slept.append(seconds)
            import time
            time.sleep(max(seconds, 0.3))  # long enough for the bucket to refill

        with Client(api.url, "k", sleep=sleep, backoff_s=0.2) as client:
            for _ in range(4):
                assert client.health("leukemia")["status"] == "ready"
            assert client.retried >= 1 and len(slept) == client.retried
            while True:  # spend the rest of the quota (6 admitted requests a day)
                try:
                    client.health("leukemia")
                except ApiError as exc:
                    assert (exc.status, exc.code) == (429, "quota_exceeded")
                    break
            retried = client.retried
            with pytest.raises(ApiError):
                client.health("leukemia")
            assert client.retried == retried  # no retry: waiting will not bring the quota back today
    finally:
        api.stop()


def test_cli_batch_scores_a_folder_resumably_with_a_progress_bar(contract_api, tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(_event_file_bytes("skin/ok_dicom_ct.json"))
    (folder / "colour.dcm").write_bytes(_event_file_bytes("skin/ok_dicom_colour.json"))
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "results.csv"
    env = {**os.environ, "ONCOSERVE_URL": contract_api.url, "ONCOSERVE_API_KEY": CONTRACT_KEY}
    # the DICOM phantoms are synthetic: the skin guard would refuse them, so the run asks for a report
    first = subprocess.run([CLI, "batch", "skin", str(folder), "--out", str(out), "--concurrency", "2", "--ood", "report"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert first.returncode == 1, first.stderr  # one file failed: reported, not fatal
    assert "3/3" in first.stderr and "2 scored, 1 failed" in first.stderr  # tqdm's bar, then the summary
    rows = {row["file"]: row for row in csv.DictReader(out.open())}
    assert rows["broken.png"]["status"] == "error" and rows["broken.png"]["error_code"] == "not_an_image"
    assert {rows[name]["status"] for name in ("ct.dcm", "colour.dcm")} == {"ok"}
    (folder / "broken.png").unlink()
    again = subprocess.run([CLI, "batch", "skin", str(folder), "--out", str(out), "--ood", "report"], capture_output=True, text=True,
                           env=env, timeout=120)
    assert again.returncode == 0 and "2 already in" in again.stderr and "0 scored" in again.stderr
    assert [row["file"] for row in csv.DictReader(out.open())] == [name for name in rows if name != "broken.png"]


def test_cli_predict_writes_the_heatmap_and_lists_models(contract_api, tmp_path):
    scan = tmp_path / "ct.dcm"
    scan.write_bytes(_event_file_bytes("brain/ok_dicom_ct.json"))
    heatmap = tmp_path / "heat.png"
    args = ["--url", contract_api.url, "--api-key", CONTRACT_KEY]
    answer = subprocess.run([CLI, *args, "predict", "brain", str(scan), "--explain", "--heatmap", str(heatmap),
                             "--ood", "report"],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["explanation"]["heatmap_png"] == f"<written to {heatmap}>"
    assert heatmap.read_bytes()[:4] == b"\x89PNG"
    listing = subprocess.run([CLI, *args, "models"], capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 5
    refused = subprocess.run([CLI, "--url", contract_api.url, "--api-key", "wrong", "models"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and json.loads(refused.stderr)["error"]["code"] == "forbidden"
