"""Batch jobs: stream millions of unique headlines to .csv/.jsonl/.txt, resumable after a kill, sharded over ranks.

A job appends whole chunks of lines with one `os.write` each, then records the byte length and the next candidate
index in `<out>.progress.json` (atomically). A kill, SIGKILL included, leaves whole lines only; `resume=True`
truncates anything written after the last record and goes on from that candidate, so a resumed job writes exactly
what an uninterrupted one would. Under torchrun each rank writes its own shard and rank 0 merges them.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pandas as pd
from fastprogress.fastprogress import progress_bar

from .errors import JobError, OutputExistsError
from .files import write_atomic
from .generate import GenerationRequest, HeadlineSampler
from .text import headline_hash

__all__ = ["write_headlines", "exclusive", "iter_chunks", "read_headlines_file", "spreadsheet_safe", "FORMATS"]

FORMATS = (".csv", ".jsonl", ".txt")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """Prefix a quote to cells a spreadsheet would run as a formula (`=`, `+`, `-`, `@`; OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def _unescape(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise JobError(f"{path}: unknown output format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def _encode(rows: pd.DataFrame, suffix: str) -> str:
    rows = rows.round({"log_prob": 4, "clickbait": 4})
    if suffix == ".txt":
        return "".join(text + "\n" for text in rows["text"])
    if suffix == ".jsonl":
        return rows.to_json(orient="records", lines=True, force_ascii=False)
    buf = io.StringIO()
    rows.assign(text=rows["text"].map(spreadsheet_safe)).to_csv(buf, header=False, index=False, lineterminator="\n",
                                                                 quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue()


def read_headlines_file(path: str | os.PathLike, chunksize: int = 100_000) -> Iterator[pd.DataFrame]:
    """Chunks of a job's output (or shard) as DataFrames with at least `text`, unescaped, in file order."""
    path = Path(path)
    suffix = _suffix(path)
    if path.stat().st_size == 0:
        return
    if suffix == ".csv":
        for chunk in pd.read_csv(path, chunksize=chunksize, dtype={"text": "string"}, keep_default_na=False):
            yield chunk.assign(text=chunk["text"].map(_unescape))
    elif suffix == ".jsonl":
        yield from pd.read_json(path, lines=True, chunksize=chunksize, dtype={"text": "string"})
    else:
        with open(path, encoding="utf-8") as f:
            lines: list[str] = []
            for line in f:
                lines.append(line.rstrip("\n"))
                if len(lines) == chunksize:
                    yield pd.DataFrame({"text": lines})
                    lines = []
            if lines:
                yield pd.DataFrame({"text": lines})


def _state_file(path: Path) -> Path:
    return path.with_name(path.name + ".progress.json")


def _shard(path: Path, rank: int) -> Path:
    return path.with_name(f"{path.name}.rank{rank}{path.suffix}")


def _write_all(fd: int, data: bytes) -> None:
    # One write() per chunk of whole lines: a killed process never leaves half of one (regular files).
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _JobFiles:
    """An output file with its `.progress.json`: open, resume or refuse; append chunks; finish."""

    def __init__(self, path: Path, request: GenerationRequest, resume: bool, overwrite: bool, columns: list[str]):
        self.path, self.suffix = path, _suffix(path)
        self.state_file = _state_file(path)
        job = request.to_dict()
        _check_output(path, overwrite)
        if resume and self.state_file.exists():
            self.state = _read_state(self.state_file, path)
            _same_job(path, self.state["job"], job, "--resume with other options than the job it continues")
            with open(path, "r+b") as f:
                f.truncate(self.state["bytes"])  # drop whatever was written after the last record
        elif path.exists() and not overwrite:
            hint = ("it has no progress file, so it is not an unfinished job" if resume
                    else "pass resume/--resume to continue an unfinished job")
            raise OutputExistsError(f"{path} exists; {hint}, or overwrite/--force to replace it")
        else:
            if path.is_symlink():
                path.unlink()  # --force replaces the link itself, never the file it points to
            header = ",".join(columns) + "\n" if self.suffix == ".csv" else ""
            path.write_text(header, encoding="utf-8")
            self.state = {"job": job, "lines": 0, "bytes": len(header.encode()), "next_index": 0}
            self._record()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)

    def _record(self) -> None:
        write_atomic(self.state_file, json.dumps(self.state))

    def append(self, rows: pd.DataFrame, next_index: int) -> None:
        """Write `rows` in one append, flush them to disk, then record how far the job got. A write that fails
        (a full disk) leaves the record where it was, so a resume truncates the partial chunk."""
        data = _encode(rows, self.suffix).encode("utf-8")
        try:
            _write_all(self.fd, data)
            os.fsync(self.fd)
        except OSError as e:
            os.close(self.fd)
            raise JobError(f"{self.path}: writing failed ({e.strerror or e}) after {self.state['lines']:,} "
                           f"headlines; free space, then rerun with --resume to continue") from None
        self.state.update(lines=self.state["lines"] + len(rows), bytes=self.state["bytes"] + len(data),
                          next_index=next_index)
        self._record()

    def finish(self) -> None:
        """Close the output; the progress file becomes `<out>.job.json`, the record of the finished job."""
        os.close(self.fd)
        os.replace(self.state_file, _job_file(self.path))


def _check_output(path: Path, overwrite: bool) -> None:
    """Refuse outputs that cannot be (or must not be) written: a folder, a missing folder, a symlink unless
    `overwrite` (which then replaces the link, not its target)."""
    if not path.parent.is_dir():
        raise JobError(f"{path}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise JobError(f"{path}: is a folder; give a file name ending in {', '.join(FORMATS)}")
    if path.is_symlink() and not overwrite:
        raise JobError(f"{path}: is a symbolic link; pass overwrite/--force to replace the link itself")


def _read_state(state_file: Path, path: Path) -> dict:
    """A progress file, checked: a broken one is our error, and the output is left as it is."""
    hint = f"delete it and rerun with --force to start {path.name} over"
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
        lines, size, index, job = state["lines"], state["bytes"], state["next_index"], state["job"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise JobError(f"{state_file}: not a readable progress file ({type(e).__name__}: {e}); {hint}") from None
    if not (all(isinstance(v, int) and v >= 0 for v in (lines, size, index)) and isinstance(job, dict)):
        raise JobError(f"{state_file}: progress file has bad values; {hint}")
    if not path.exists() or size > path.stat().st_size:
        raise JobError(f"{state_file}: records {size:,} bytes written, but {path} holds "
                       f"{path.stat().st_size if path.exists() else 0:,}; {hint}")
    return state


def _seen_hashes(path: Path) -> set[int]:
    return {headline_hash(t) for chunk in read_headlines_file(path) for t in chunk["text"]}


def _columns(request: GenerationRequest) -> list[str]:
    return ["text", "words", "log_prob"] + (["clickbait"] if request.scored else [])


def _job_file(path: Path) -> Path:
    return path.with_name(path.name + ".job.json")


def _finished_with(path: Path, request: GenerationRequest) -> None:
    """Refuse to report a finished output as done for a request other than the one that wrote it."""
    record = _job_file(path)
    if not record.exists():
        return
    _same_job(path, _read_state(record, path)["job"], request.to_dict(), "finished by a job with other options",
              "; pass --force to replace it")


def _same_job(path: Path, recorded: dict, job: dict, problem: str, hint: str = "") -> None:
    """Refuse `job` where it differs from the `recorded` one, listing each differing option (was, now)."""
    if recorded != job:
        diff = {k: (v, job.get(k)) for k, v in recorded.items() if job.get(k) != v}
        raise JobError(f"{path}: {problem} (was, now): {diff}{hint}")


def _complete(path: Path, n: int) -> bool:
    """True for a finished job's output: it exists without a progress file and holds `n` headlines."""
    if not path.exists() or _state_file(path).exists():
        return False
    return sum(len(chunk) for chunk in read_headlines_file(path)) == n


def iter_chunks(sampler: HeadlineSampler, n: int, chunk_size: int = 1000,
                progress: bool = False) -> Iterator[pd.DataFrame]:
    """The next `n` headlines of `sampler` in chunks of `chunk_size` rows (a fastprogress bar when `progress`)."""
    starts = range(0, n, chunk_size)
    # fastprogress prints a probe character even when display=False, so no bar object at all without progress
    for start in progress_bar(starts, leave=False) if progress else starts:
        yield sampler.take(min(chunk_size, n - start))


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (fcntl.flock) for the block; a second job on `path` is refused.

    The lock file stays: removing it would let a waiting job lock a file nobody else sees."""
    lock = path.with_name(path.name + ".lock")
    if not path.parent.is_dir():
        raise JobError(f"{path}: the folder {path.parent} does not exist")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise JobError(f"{path}: another job is writing it (it holds {lock.name}); wait for it or stop it") from None
    try:
        yield
    finally:
        os.close(fd)  # closing releases the lock, also when the process is killed


def _run(path: Path, request: GenerationRequest, n: int, stream: tuple[int, ...], resume: bool, overwrite: bool,
         chunk_size: int, progress: bool, seen: set[int] | None = None) -> int:
    """Generate until `path` holds `n` headlines (none of them in `seen`); returns the number written."""
    with exclusive(path):
        return _run_locked(path, request, n, stream, resume, overwrite, chunk_size, progress, seen)


def _run_locked(path: Path, request: GenerationRequest, n: int, stream: tuple[int, ...], resume: bool,
                overwrite: bool, chunk_size: int, progress: bool, seen: set[int] | None) -> int:
    if resume and _complete(path, n):
        _finished_with(path, request)
        return n
    files = _JobFiles(path, request, resume, overwrite, _columns(request))
    seen = set() if seen is None else seen
    if files.state["lines"]:
        seen |= _seen_hashes(path)
    sampler = request.sampler(stream, start=files.state["next_index"], seen=seen)
    done = files.state["lines"]
    for rows in iter_chunks(sampler, n - done, chunk_size, progress):
        files.append(rows, sampler.position)
        done += len(rows)
    files.finish()
    return done


def _seeded(request: GenerationRequest, path: Path, resume: bool, world: int) -> GenerationRequest:
    """A seedless job takes the seed of the job it resumes, else a random one (rank 0's, under torchrun)."""
    import torch.distributed as dist
    if request.seed is not None:
        return request
    outputs = [path] + [_shard(path, 0)] * (world > 1)
    records = [(record(out), out) for out in outputs for record in (_state_file, _job_file)]
    stored = next((_read_state(record, out)["job"]["seed"] for record, out in records if resume and record.exists()),
                  None)
    seed = [stored if stored is not None else request.seeded().seed]
    if world > 1:
        dist.broadcast_object_list(seed, src=0)
    return replace(request, seed=seed[0])


def _shard_sizes(n: int, world: int) -> list[int]:
    return [n // world + (r < n % world) for r in range(world)]


def write_headlines(path: str | os.PathLike, request: GenerationRequest, *, resume: bool = False,
                    overwrite: bool = False, chunk_size: int = 1000, progress: bool = True) -> GenerationRequest:
    """Write `request.n` unique headlines to `path` (.csv, .jsonl or .txt), streaming and resumable.

    An existing `path` is never replaced unless `overwrite`; `resume` continues a killed job. Under torchrun
    (WORLD_SIZE > 1, process group initialised) rank r writes `path.rank{r}` from its own random stream, and
    rank 0 merges the shards into `path`, dropping cross-rank repeats and topping up to exactly `request.n`.
    Returns the request as run (with the seed it drew, if it had none).
    """
    import torch.distributed as dist
    path = Path(path)
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    request = _seeded(request, path, resume, world)
    if world == 1:
        _run(path, request, request.n, (), resume, overwrite, chunk_size, progress)
        return request
    rank = dist.get_rank()
    if path.exists() and not overwrite:
        if resume and _complete(path, request.n):
            _finished_with(path, request)
            return request
        raise OutputExistsError(f"{path} exists; pass overwrite/--force to replace it")
    shard = _shard(path, rank)
    _run(shard, request, _shard_sizes(request.n, world)[rank], (rank,), resume, overwrite, chunk_size,
         progress and rank == 0)
    dist.barrier()
    if rank == 0:
        with exclusive(path):
            _merge(path, request, [_shard(path, r) for r in range(world)], world, chunk_size)
    dist.barrier()
    return request


def _merge(path: Path, request: GenerationRequest, shards: list[Path], world: int, chunk_size: int) -> None:
    """Shards in rank order into `path`, first copy of each headline kept, then a top-up stream to exactly n."""
    tmp = path.with_name(path.name + ".merging" + path.suffix)
    files = _JobFiles(tmp, request, resume=False, overwrite=True, columns=_columns(request))
    seen: set[int] = set()
    for shard in shards:
        for chunk in read_headlines_file(shard, chunk_size):
            keys = chunk["text"].map(headline_hash)
            fresh = ~keys.duplicated() & ~keys.isin(seen)
            seen.update(keys[fresh])
            files.append(chunk[fresh], 0)
    files.finish()
    missing = request.n - len(seen)
    if missing:  # repeats across ranks: rank 0 draws replacements from a stream no rank used
        top_up = path.with_name(path.name + ".topup" + path.suffix)
        _run(top_up, request, missing, (world,), False, True, chunk_size, False, seen=seen)
        with open(tmp, "ab") as out, open(top_up, "rb") as extra:
            if path.suffix == ".csv":
                extra.readline()  # the header
            out.write(extra.read())
        _remove(top_up)
    os.replace(tmp, path)
    os.replace(_job_file(tmp), _job_file(path))
    _remove(tmp)
    for shard in shards:
        _remove(shard)


def _remove(path: Path) -> None:
    """An internal file (shard, top-up) with its job record and lock, once merged."""
    for file in (path, _job_file(path), path.with_name(path.name + ".lock")):
        file.unlink(missing_ok=True)
