"""The HTTP API through FastAPI's test client: every endpoint, every limit, a malformed body, auth on and off."""
import subprocess
import sys

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from clickbait.generate import generate_headlines  # noqa: E402
from clickbait.serve import MAX_BODY, ServerConfig, create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(tiny_bundle_path, clas_bundle_path):
    return TestClient(create_app(ServerConfig(model=str(tiny_bundle_path), classifier=str(clas_bundle_path))))


def test_every_endpoint_mirrors_the_python_call(client, tiny_bundle_path):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["lm"] == {"clickbait": str(tiny_bundle_path)}
    body = {"n": 5, "min_len": 3, "max_len": 10, "seed": 0, "keywords": ["dog"]}
    out = client.post("/api/generate", json=body)
    assert out.status_code == 200, out.text
    rows = out.json()["headlines"]
    # same seed, same headlines through the API as through Python
    assert [r["text"] for r in rows] == generate_headlines(5, 3, 10, seed=0, keywords=["dog"], model=tiny_bundle_path)
    assert all(0 <= r["clickbait"] <= 1 and r["log_prob_per_word"] < 0 for r in rows)
    texts = [r["text"] for r in rows]
    assert len(client.post("/api/score", json={"headlines": texts}).json()["log_prob"]) == 5
    plain = client.post("/api/generate", json={**body, "eta": None, "top_p": 0.9}).json()["headlines"]
    assert [r["text"] for r in plain] == generate_headlines(5, 3, 10, seed=0, keywords=["dog"], eta=None, top_p=0.9,
                                                            model=tiny_bundle_path)
    # the realism filter is a request field too; this LM has no discriminator of its own, so it goes unfiltered
    assert client.post("/api/generate", json={**body, "realism": True}).json()["headlines"] == rows
    classified = client.post("/api/classify", json={"headlines": texts}).json()["rows"]
    assert {"text", "label"} <= set(classified[0]) and len(classified) == 5
    checked = client.post("/api/check", json={"headlines": ["We Ranked the the Best Pizzas"],
                                              "archive": ["Nothing Like It Was Ever Published"]}).json()["rows"]
    assert checked[0]["slips"] == "doubled word: the the" and checked[0]["archive_overlap"] == ""
    rewrites = client.post("/api/rewrite", json={"text": "Zorblax adopts 3 puppies", "n": 3, "seed": 0}).json()
    assert len(rewrites["rows"]) == 3 and all("Zorblax" in r["text"] for r in rewrites["rows"])
    assert "/api/generate" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text and "http" not in page.text.split("<body>")[1]


@pytest.mark.parametrize("path, body, status, field", [
    ("/api/generate", {"n": 501}, 422, "n"),
    ("/api/generate", {"n": 5, "colour": "red"}, 422, "colour"),
    ("/api/generate", {"n": 5, "prefix": "x" * 301}, 422, "prefix"),
    ("/api/generate", {"n": 5, "keywords": ["k" * 61]}, 422, "keywords[0]"),
    ("/api/generate", {"n": "five"}, 422, "n"),
    ("/api/score", {"headlines": []}, 422, "headlines"),
    ("/api/score", {"headlines": ["A" * 301]}, 422, "headlines[0]"),
    ("/api/classify", {"headlines": ["ok"] * 1001}, 422, "headlines"),
    ("/api/rewrite", {"text": "A Headline", "label": "sports"}, 422, "label"),
])
def test_limits_are_4xx_json_naming_the_field(client, path, body, status, field):
    out = client.post(path, json=body)
    assert out.status_code == status, out.text
    detail = out.json()["detail"]
    named = [d["field"] for d in detail] if isinstance(detail, list) else [detail["field"]]
    assert field in named


def test_bad_requests_are_our_clear_errors(client):
    out = client.post("/api/generate", json={"n": 5, "min_len": 9, "max_len": 4})
    assert out.status_code == 400 and out.json()["detail"]["error"] == "min_len (9) is greater than max_len (4)"
    # a request no headline can meet ends after a bounded number of draws, saying what was rejected
    out = client.post("/api/generate", json={"n": 5, "top_k": 1, "rare_words": False})  # greedy: one headline
    assert out.status_code == 400 and "found only 1 of 5 headlines in 1000 attempts" in out.json()["detail"]["error"]
    out = client.post("/api/generate", json={"n": 5, "eta": 2})
    assert out.status_code == 400 and out.json()["detail"]["error"] == "eta must be in (0, 1) or None, got 2.0"
    out = client.post("/api/generate", json={"n": 2, "keywords": ["..."]})
    assert out.status_code == 400 and "keyword '...' has no letters or digits" in out.json()["detail"]["error"]
    out = client.post("/api/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert out.status_code == 422 and "JSON" in str(out.json()["detail"])
    out = client.post("/api/score", content=b"x" * (MAX_BODY + 1), headers={"content-type": "application/json"})
    assert out.status_code == 413 and out.json()["detail"]["field"] == "body"


def test_a_token_is_checked_on_every_api_request(tiny_bundle_path, clas_bundle_path):
    client = TestClient(create_app(ServerConfig(model=str(tiny_bundle_path), classifier=str(clas_bundle_path),
                                                token="s3cret")))
    assert client.get("/api/health").status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/api/score", json={"headlines": ["A"]}).status_code == 401
    assert client.get("/api/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.get("/").status_code == 200  # the page loads, then asks for the token


def test_serving_beyond_loopback_without_a_token_is_refused(monkeypatch):
    monkeypatch.delenv("CLICKBAIT_TOKEN", raising=False)
    out = subprocess.run([sys.executable, "-m", "clickbait.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip() == ("clickbait serve: refusing to serve on 0.0.0.0 without a token: pass --token or "
                                  "set CLICKBAIT_TOKEN (or bind 127.0.0.1)")
