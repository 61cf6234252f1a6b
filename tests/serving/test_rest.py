"""REST scoring with MLflow's own scoring server on the registered champion, through a real HTTP client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraud_ml.local.kafka_broker import free_port
from fraud_ml.schema import FEATURES
from fraud_ml.serving.rest import RestServer, ServeSettings, ping, server_command


def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        text = err.read().decode("utf-8", "replace")
        try:
            return err.code, json.loads(text)
        except json.JSONDecodeError:  # e.g. the 415 of an unsupported content type is plain text
            return err.code, {"message": text}


def split_payload(frame: pd.DataFrame) -> bytes:
    return json.dumps({"dataframe_split": json.loads(frame.to_json(orient="split", index=False))}).encode()


@pytest.fixture(scope="module")
def server(registered_champion, base_config, tmp_path_factory):
    cfg = base_config.with_overrides([f"serve.port={free_port()}"], env={})
    with RestServer(cfg, log_path=tmp_path_factory.mktemp("serve") / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def rows(champion_test_split) -> pd.DataFrame:
    """Test-split rows as a user's CSV reads them: whole-second Time and whole Amount as int64."""
    frame = champion_test_split[FEATURES].head(64).copy()
    frame["Time"] = frame["Time"].round().astype(np.int64)
    frame["Amount"] = frame["Amount"].round().astype(np.int64)
    return frame


def test_the_server_binds_loopback_by_default(server, listening):
    assert ServeSettings.from_config(server.cfg).host == "127.0.0.1"
    assert listening(server.settings.port) == {"127.0.0.1"}
    from mlflow.pyfunc.scoring_server import _SERVER_MODEL_PATH

    argv, env = server_command("/models/x", server.settings)
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and env[_SERVER_MODEL_PATH].endswith("/models/x")


def test_integer_features_are_scored_like_their_float_values(server, rows, registered_champion):
    from fraud_ml.io.mlflow import load_verified

    status, body = post(server.url, split_payload(rows))
    assert status == 200, body
    got = pd.DataFrame(body["predictions"])
    assert list(got.columns) == ["probability", "raw_score", "decision", "reasons"] and len(got) == len(rows)
    model = load_verified(registered_champion.champion.model_uri)
    # the Python API too: an int64 Time used to fail with "Can not safely convert int64 to float64"
    from_ints = model.predict(rows)
    from_floats = model.predict(rows.astype(np.float64))
    np.testing.assert_allclose(got["probability"], from_floats["probability"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(from_ints["probability"], from_floats["probability"], rtol=0, atol=0)
    assert (got["decision"] == from_floats["decision"]).all()
    assert got["decision"].isin([0, 1]).all() and got["probability"].between(0, 1).all()
    assert got.loc[got["decision"] == 1, "reasons"].str.contains(r"\(\+").all()
    assert got.loc[got["decision"] == 0, "reasons"].isna().all()


def test_csv_rows_as_the_kaggle_file_holds_them_are_accepted(server, rows):
    status, answer = post(server.url, rows.head(5).to_csv(index=False).encode(), "text/csv")
    assert status == 200 and len(answer["predictions"]) == 5, answer


def test_records_orientation_is_accepted(server, rows):
    body = json.dumps({"dataframe_records": rows.head(3).to_dict(orient="records")}).encode()
    status, answer = post(server.url, body)
    assert status == 200 and len(answer["predictions"]) == 3


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"{not json", "application/json", 400, "Invalid input"),
        (
            b'{"dataframe_split": {"columns": ["Time"], "data": [[1]]}}',
            "application/json",
            400,
            "missing feature columns: V1, V2",
        ),
        (None, "application/json", 400, "features must be numbers"),  # a string in V3, built below
        (b'{"instances": 3}', "application/json", 400, ""),
        (b"Time,V1\n1,2\n", "text/plain", 415, "only supports the following content types"),
    ],
    ids=["not-json", "missing-features", "string-feature", "not-a-frame", "unsupported-content-type"],
)
def test_a_bad_payload_gets_a_clear_4xx(server, rows, body, content_type, status, says):
    if body is None:
        bad = rows.head(2).astype(object)
        bad.loc[0, "V3"] = "abc"
        body = split_payload(bad)
    got, answer = post(server.url, body, content_type)
    assert got == status, answer
    if says:
        assert says in answer["message"]
    assert ping(server.url)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    payload=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "dataframe_split": st.fixed_dictionaries(
                    {
                        "columns": st.just(FEATURES),
                        "data": st.lists(st.lists(json_values, min_size=30, max_size=30), min_size=1, max_size=3),
                    }
                )
            }
        ),
        st.fixed_dictionaries(
            {
                "dataframe_records": st.lists(
                    st.fixed_dictionaries({c: json_values for c in FEATURES}), min_size=1, max_size=2
                )
            }
        ),
    )
)
def test_any_json_payload_gets_predictions_or_a_4xx_never_a_5xx(server, payload):
    status, answer = post(server.url, json.dumps(payload).encode())
    assert status == 200 or 400 <= status < 500, answer
    if status == 200:
        assert all(0 <= p["probability"] <= 1 for p in answer["predictions"])
    else:
        assert answer.get("message")
    assert ping(server.url)
