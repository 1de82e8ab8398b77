"""The editor's page and HTTP API: `clickbait serve` runs `create_app()` on uvicorn.

Every endpoint mirrors a Python call and takes its options as JSON: `/api/generate` fills the one
`GenerationRequest` (which checks it, as for the API and the CLI), `/api/score`, `/api/classify`, `/api/check` and
`/api/rewrite` wrap `score_headlines`, `classify_headlines`, `check_headlines` and `rewrite_headline`. Limits keep
every request finite; errors are 4xx JSON naming the field. `/` is one page whose assets are all served from the
package, so it works offline.
"""

import hmac
import ipaddress
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Literal

from .errors import ClickbaitError, UsageError

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["ServerConfig", "create_app", "serve", "MAX_N", "MAX_HEADLINES", "MAX_CHARS", "MAX_BODY", "MAX_ATTEMPTS",
           "TOKEN_ENV"]

MAX_N = 500            # headlines one generate request returns
MAX_HEADLINES = 1000   # headlines one score/classify/check request sends
MAX_CHARS = 300        # characters of one headline, prefix or archive line
MAX_KEYWORD_CHARS = 60
MAX_BODY = 1_000_000   # bytes of one request body
MAX_ATTEMPTS = 5000    # candidates one generate request may draw (about 20 s here): an unmeetable request fails
TOKEN_ENV = "CLICKBAIT_TOKEN"
STATIC = Path(__file__).parent / "static"


@dataclass(frozen=True)
class ServerConfig:
    """What the server loads and who may call it: LM and classifier bundles (None: the bundled ones), the token
    every API request must carry (None: no check, loopback only), and how many requests compute at once (the others
    wait their turn; requests never share recurrent state, so this is about cores, not safety)."""
    model: str | None = None
    classifier: str | None = None
    token: str | None = None
    max_parallel: int = 2


def _attempts(n: int) -> int:
    """How many candidates a request for `n` headlines may draw before it fails with what was rejected."""
    return min(max(20 * n, 1000), MAX_ATTEMPTS)


def _records(df) -> list[dict]:
    """A DataFrame as JSON-ready rows (numpy scalars become Python ones)."""
    return json.loads(df.to_json(orient="records"))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def create_app(config: ServerConfig = ServerConfig()) -> "FastAPI":
    """The FastAPI app: JSON endpoints under /api, OpenAPI docs at /docs, the page at /."""
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from pydantic import BaseModel, ConfigDict, Field

    from .bundle import resolve_bundle
    from .classify import classify_headlines
    from .evaluate import check_headlines
    from .generate import LABEL_BUNDLES, GenerationRequest, fluency, generate_from, score_headlines
    from .rewrite import rewrite_headline

    class Strict(BaseModel):
        model_config = ConfigDict(extra="forbid")

    class GenerateBody(Strict):
        n: int = Field(20, ge=1, le=MAX_N)
        min_len: int = GenerationRequest.min_len
        max_len: int = GenerationRequest.max_len
        temperature: float = GenerationRequest.temperature
        top_k: int | None = GenerationRequest.top_k
        top_p: float | None = GenerationRequest.top_p
        eta: float | None = GenerationRequest.eta
        repeat_floor: float | None = GenerationRequest.repeat_floor
        prefix: str | None = Field(None, max_length=MAX_CHARS)
        style: str = GenerationRequest.style
        seed: int | None = None
        unique: bool = GenerationRequest.unique
        novel: bool = GenerationRequest.novel
        label: str = GenerationRequest.label
        keywords: list[str] = Field(default_factory=list, max_length=8)
        archive: list[str] | None = Field(None, max_length=MAX_HEADLINES)
        banned_words: list[str] | None = Field(None, max_length=1000)
        min_score: float | None = GenerationRequest.min_score
        rerank: bool = GenerationRequest.rerank
        rare_words: bool = GenerationRequest.rare_words
        realism: bool = GenerationRequest.realism

    class HeadlinesBody(Strict):
        headlines: list[str] = Field(min_length=1, max_length=MAX_HEADLINES)
        archive: list[str] | None = Field(None, max_length=MAX_HEADLINES)

    class RewriteBody(Strict):
        text: str = Field(min_length=1, max_length=MAX_CHARS)
        n: int = Field(10, ge=1, le=50)
        label: Literal[tuple(LABEL_BUNDLES)] = "clickbait"
        keep: list[str] | None = Field(None, max_length=5)
        seed: int | None = None

    def _check_lengths(field: str, texts: list[str] | None, limit: int) -> None:
        for i, text in enumerate(texts or ()):
            if len(text) > limit:
                raise HTTPException(422, {"field": f"{field}[{i}]", "error": f"longer than {limit} characters"})

    def authorised(request: Request) -> None:
        if config.token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {config.token}".encode()):
            raise HTTPException(401, {"field": "authorization", "error": "missing or wrong token (Bearer TOKEN)"})

    slots = threading.BoundedSemaphore(config.max_parallel)

    def computing() -> Iterator[None]:
        with slots:
            yield

    app = FastAPI(title="clickbait", description=__doc__, version="1")
    api = [Depends(authorised)]
    work = [*api, Depends(computing)]

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        # Checked on the declared size, before a byte is read; a POST that declares none is refused.
        declared = request.headers.get("content-length")
        if request.method == "POST" and declared is None:
            return JSONResponse({"detail": {"field": "body", "error": "Content-Length required"}}, 411)
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            return JSONResponse({"detail": {"field": "body", "error": f"larger than {MAX_BODY:,} bytes"}}, 413)
        return await call_next(request)

    @app.exception_handler(ClickbaitError)
    async def our_error(request: Request, exc: ClickbaitError):
        return JSONResponse({"detail": {"error": str(exc)}}, 400)

    @app.exception_handler(RequestValidationError)
    async def bad_field(request: Request, exc: RequestValidationError):
        errors = [{"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "error": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, 422)

    @app.get("/api/health", dependencies=api)
    def health() -> dict:
        """Which bundles this server writes and scores with."""
        lms = {label: str(GenerationRequest(model=config.model, label=label).lm().path)
               for label in (LABEL_BUNDLES if config.model is None else ["clickbait"])}
        return {"status": "ok", "lm": lms, "classifier": str(resolve_bundle(config.classifier, "classifier").path),
                "limits": {"n": MAX_N, "headlines": MAX_HEADLINES, "chars": MAX_CHARS, "body_bytes": MAX_BODY}}

    @app.post("/api/generate", dependencies=work)
    def generate(body: GenerateBody) -> dict:
        """Headlines for one GenerationRequest, each with its clickbait probability and fluency."""
        _check_lengths("keywords", body.keywords, MAX_KEYWORD_CHARS)
        _check_lengths("archive", body.archive, MAX_CHARS)
        values = body.model_dump()
        values["keywords"] = tuple(values["keywords"])
        if values["banned_words"] is None:
            values.pop("banned_words")  # the default list, unless the caller gives one
        request = GenerationRequest(**values, model=config.model, classifier=config.classifier).seeded()
        rows = generate_from(request, max_attempts=_attempts(body.n), return_scores=True)
        scores = classify_headlines(rows["text"].tolist(), config.classifier)["clickbait"] if len(rows) else []
        return {"seed": request.seed, "headlines": [
            {"text": t, "words": int(w), "log_prob_per_word": round(float(f), 4), "clickbait": round(float(c), 4)}
            for t, w, f, c in zip(rows["text"], rows["words"], fluency(rows), scores)]}

    @app.post("/api/score", dependencies=work)
    def score(body: HeadlinesBody) -> dict:
        """Log-probability (nats) of each headline under the LM."""
        _check_lengths("headlines", body.headlines, MAX_CHARS)
        return {"log_prob": [round(x, 4) for x in score_headlines(body.headlines, config.model)]}

    @app.post("/api/classify", dependencies=work)
    def classify(body: HeadlinesBody) -> dict:
        """Label and class probabilities of each headline."""
        _check_lengths("headlines", body.headlines, MAX_CHARS)
        return {"rows": _records(classify_headlines(body.headlines, config.classifier).round(4))}

    @app.post("/api/check", dependencies=work)
    def check(body: HeadlinesBody) -> dict:
        """Fluency, clickbait probability, grammar slips and copies of each headline (and of an archive)."""
        _check_lengths("headlines", body.headlines, MAX_CHARS)
        _check_lengths("archive", body.archive, MAX_CHARS)
        rows = check_headlines(body.headlines, config.model, config.classifier, body.archive)
        return {"rows": _records(rows)}

    @app.post("/api/rewrite", dependencies=work)
    def rewrite(body: RewriteBody) -> dict:
        """Variants of a headline in a voice, keeping its content words, best first."""
        _check_lengths("keep", body.keep, MAX_KEYWORD_CHARS)
        model = config.model if body.label == "clickbait" else None
        rows = rewrite_headline(body.text, n=body.n, label=body.label, keep=body.keep, seed=body.seed, model=model,
                                classifier=config.classifier)
        return {"rows": _records(rows)}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(STATIC / "index.html")

    return app


def _few_malloc_arenas() -> None:
    # glibc gives each new thread of the request pool its own malloc arena, and the arenas keep what the model's
    # activations used: resident memory grew 59% under 16 clients. Two arenas bound that. (No-op off glibc.)
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def serve(host: str = "127.0.0.1", port: int = 8000, config: ServerConfig = ServerConfig()) -> None:
    """Run the server until interrupted. Any address but loopback needs a token: refused with one line if none."""
    import uvicorn
    token = config.token or os.environ.get(TOKEN_ENV) or None
    if not _is_loopback(host) and token is None:
        raise UsageError(f"refusing to serve on {host} without a token: pass --token or set {TOKEN_ENV} "
                         f"(or bind 127.0.0.1)")
    _few_malloc_arenas()
    import torch
    # Requests computing at once share the cores: each gets its part instead of all of them competing for all.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // config.max_parallel))
    app = create_app(ServerConfig(config.model, config.classifier, token, config.max_parallel))
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=5, limit_concurrency=64)
