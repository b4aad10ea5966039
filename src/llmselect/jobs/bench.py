"""The bench job: latency under load against an OpenAI-compatible server, started for the run
when asked, with every request's timings and each level's summary written as levels end.

`--out DIR` receives `requests.jsonl` (one line per request, warm-up ones marked) and
`summary.json` (the `BenchResult`, rewritten after each level, `complete: false` until the
last); a started engine's log goes to `DIR/engine.log`. A crash, a Ctrl-C or an engine that
dies keeps what was measured.
"""

from __future__ import annotations

import asyncio
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from llmselect.atomicfile import write_text_atomic
from llmselect.errors import LLMSelectError
from llmselect.serving.client import RequestSettings, base_url
from llmselect.serving.engine import EngineServer, first_model
from llmselect.serving.load import Level
from llmselect.serving.prompts import GivenPrompts, Prompts, SyntheticPrompts, parse_lengths
from llmselect.serving.results import (
    BenchResult,
    Engine,
    LevelSummary,
    RequestRecord,
    Targets,
    read_bench,
)
from llmselect.serving.sweep import Sweep, SweepResult
from llmselect.serving.tokenizers import Tokenizer, load_tokenizer

if TYPE_CHECKING:
    from llmselect.sizing.calibration import Measurement

Progress = Callable[..., None]
"""`progress(name, done, total)`: the CLI's progress bars."""


@dataclass
class BenchOptions:
    """What `llmselect bench` was asked for."""

    url: str | None = None
    """The server; None when `serve` starts one; with `study`, the name of one of its
    candidates (its server, or the engine its `serve` command starts)."""
    model: str | None = None
    """The name the server knows the model by (default: the first it lists)."""
    endpoint: Literal["completions", "chat"] = "completions"
    concurrency: list[int] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    poisson: bool = False
    knee: bool = False
    max_concurrency: int | None = None
    """The cap on requests in flight at a rate level; the highest concurrency the knee tries."""
    requests: int | None = None
    duration_s: float | None = None
    warmup: int | None = None
    """Warm-up requests per level (default: as many as the level's concurrency, or one second
    of its rate)."""
    prompt_tokens: str = "128"
    output_tokens: int = 128
    fixed_output: bool = True
    seed: int = 0
    repeats: int = 1
    timeout_s: float = 60.0
    targets: Targets | None = None
    study: Path | None = None
    tokenizer: Path | None = None
    serve: str | None = None
    file: str | None = None
    """The model file, for `{file}` in `serve` (and the tokenizer, when it is a GGUF file)."""
    startup_timeout_s: float | None = None
    """How long a started engine may take to answer (default: the candidate's, else 600 s)."""
    out: Path | None = None
    allow_insecure_http: bool = False


def levels(options: BenchOptions) -> list[Level]:
    """The levels asked for, in order; a knee search gives its first level's shape."""
    count = options.requests if options.duration_s is None else None
    if count is None and options.duration_s is None:
        count = 100

    def warmup(load: float) -> int:
        return options.warmup if options.warmup is not None else math.ceil(load)

    if options.rates:
        profile: Literal["constant", "poisson"] = "poisson" if options.poisson else "constant"
        return [
            Level(
                profile,
                concurrency=options.max_concurrency,
                rate=rate,
                requests=count,
                duration_s=options.duration_s,
                warmup=warmup(rate),
            )
            for rate in options.rates
        ]
    loads = [1] if options.knee else (options.concurrency or [1])
    return [
        Level(
            "concurrency",
            concurrency=c,
            requests=count,
            duration_s=options.duration_s,
            warmup=warmup(c),
        )
        for c in loads
    ]


def check_options(options: BenchOptions) -> None:
    if options.url is not None and "://" not in options.url:
        if options.study is None:
            raise LLMSelectError(
                f"{options.url!r} is not a URL",
                field="TARGET",
                hint="give the server's URL (http://host:8000), or a candidate's name with --study",
            )
        _take_candidate(options, options.study, options.url)
    if options.url is None and options.serve is None:
        raise LLMSelectError("give the server's URL, or a serve command to start one")
    if options.url is not None and options.serve is not None:
        raise LLMSelectError("give the server's URL or a serve command, not both", field="--serve")
    if options.rates and options.concurrency:
        raise LLMSelectError(
            "--rate and --concurrency are two kinds of load: give one",
            field="--rate",
            hint="cap the requests in flight at a rate with --max-concurrency",
        )
    if options.knee and (options.rates or options.concurrency):
        raise LLMSelectError(
            "--knee searches the concurrency itself",
            field="--knee",
            hint="leave out --concurrency and --rate (cap it with --max-concurrency)",
        )
    if options.knee and (options.targets is None or not options.targets.given):
        raise LLMSelectError(
            "--knee finds the highest load that meets targets, and none were given",
            field="--knee",
            hint="give --ttft-p95 and/or --tokens-per-s, or a study with targets",
        )
    if options.requests is not None and options.duration_s is not None:
        raise LLMSelectError("give --requests or --duration, not both", field="--duration")


def _take_candidate(options: BenchOptions, study: Path, name: str) -> None:
    """`llmselect bench NAME --study FILE`: the server of the study's candidate NAME, or the
    engine its `serve` command starts; what the command line gives wins."""
    from llmselect.evaluation.study import Candidate, load_study
    from llmselect.study import load_select_study
    from llmselect.yamlfile import load_yaml

    raw = load_yaml(study)
    candidates: list[Candidate]
    if isinstance(raw, dict) and isinstance(raw.get("candidates"), list):
        candidates = list(load_study(study).candidates)
    else:
        candidates = list(load_select_study(study)[0].candidates.run)
    found = next((c for c in candidates if c.name == name), None)
    if found is None:
        names = ", ".join(c.name for c in candidates) or "none"
        raise LLMSelectError(
            f"the study has no candidate named {name!r} (its candidates: {names})",
            file=study,
            field="TARGET",
            hint="give a candidate's name, or the server's URL (http://host:8000)",
        )
    if not (found.openai or found.serve):
        raise LLMSelectError(
            f"candidate {name!r} runs in this process ({'gguf' if found.gguf else 'transformers'}"
            "): a bench measures a server",
            file=study,
            field="serve",
            hint="give the candidate a serve command, e.g. `serve: python -m llama_cpp.server "
            "--model {file} --port {port}` with `file:`, or bench its server by URL",
        )
    if options.serve is not None:
        raise LLMSelectError(
            "give a candidate or a serve command, not both", field="--serve", file=study
        )
    options.url = found.openai
    options.serve = found.serve
    options.model = options.model or found.model
    if found.serve:
        from llmselect.evaluation.backends import served_file

        options.file = options.file or served_file(found, study.resolve().parent)
        if options.startup_timeout_s is None:
            options.startup_timeout_s = found.startup_timeout_s
    if found.allow_insecure_http:
        options.allow_insecure_http = True


def _study_inputs(options: BenchOptions) -> tuple[list[str] | None, str, Targets | None, bool]:
    """From a study file: its prompts (its dataset through its template), their source, its
    targets, and whether its task is a chat."""
    if options.study is None:
        return None, "synthetic", options.targets, options.endpoint == "chat"
    from llmselect.evaluation.datasets import load_dataset
    from llmselect.evaluation.study import DatasetSpec, TaskSpec, load_study
    from llmselect.evaluation.templates import render
    from llmselect.study import load_select_study
    from llmselect.yamlfile import load_yaml

    path = options.study
    raw = load_yaml(path)
    dataset: DatasetSpec | None
    task: TaskSpec
    targets = options.targets
    if isinstance(raw, dict) and isinstance(raw.get("candidates"), list):
        evaluation = load_study(path)
        dataset, task = evaluation.dataset, evaluation.task
    else:
        study, _ = load_select_study(path)
        dataset, task = study.dataset, study.task
        if targets is None and (study.targets.ttft_p95_s or study.targets.tokens_per_s):
            targets = Targets(
                ttft_p95_s=study.targets.ttft_p95_s, tokens_per_s=study.targets.tokens_per_s
            )
    if dataset is None:
        return None, "synthetic", targets, task.chat
    data = load_dataset(
        path.resolve().parent / dataset.path,
        dataset.fields,
        dataset.limit,
        dataset.split,
        dataset.max_line_bytes,
    )
    examples, items = data.items[: task.few_shot], data.items[task.few_shot :]
    if not items:
        raise LLMSelectError(
            "the dataset has no items left after the few-shot examples", file=path, field="task"
        )
    prompts = [render(task.template, item, examples, data.path) for item in items]
    return prompts, data.path, targets, task.chat


def _tokenizers(options: BenchOptions) -> tuple[Tokenizer | None, Tokenizer | None]:
    """The tokenizer that cuts synthetic prompts, and the one that counts output tokens.

    A `--tokenizer` does both. The GGUF file a served engine reads only cuts prompts: where the
    server reports no usage, its stream's chunks are its tokens (llama.cpp streams one per
    token), which counts them exactly, and tokenizing the text again does not (pieces merge)."""
    if options.tokenizer is not None:
        given = load_tokenizer(options.tokenizer)
        return given, given
    if options.file and options.file.lower().endswith(".gguf") and Path(options.file).is_file():
        return load_tokenizer(Path(options.file)), None
    return None, None


def check_certificate(url: str) -> None:
    """An https:// server whose certificate cannot be checked fails every request the same way:
    say so once, before the bench, with what fixes it (not "the server stopped answering")."""
    import ssl

    import httpx

    if not url.lower().startswith("https://"):
        return
    try:
        # The trust store the load generator uses (`ssl`'s default paths: SSL_CERT_FILE).
        httpx.get(base_url(url) + "/v1/models", timeout=10.0, verify=ssl.create_default_context())
    except httpx.ConnectError as exc:
        if "CERTIFICATE_VERIFY_FAILED" not in str(exc):
            return  # the bench reports the others as they come, per request
        raise LLMSelectError(
            f"the TLS certificate of {base_url(url)} could not be verified ({exc})",
            field="TARGET",
            hint="if your own certificate authority signed it, point SSL_CERT_FILE at that "
            "authority's certificate (PEM)",
        ) from None
    except httpx.HTTPError:
        return


class _Writer:
    """requests.jsonl and summary.json, written as each level ends."""

    def __init__(self, out: Path | None) -> None:
        self.out = out
        if out is not None:
            from llmselect.evaluation.runner import check_out_dir

            check_out_dir(out)
            (out / "requests.jsonl").write_text("")

    def level(self, records: list[RequestRecord]) -> None:
        if self.out is None:
            return
        with (self.out / "requests.jsonl").open("a", encoding="utf-8") as sink:
            for record in records:
                sink.write(record.model_dump_json() + "\n")

    def summary(self, result: BenchResult) -> None:
        if self.out is not None:
            write_text_atomic(self.out / "summary.json", result.model_dump_json(indent=2) + "\n")


def bench(options: BenchOptions, progress: Progress | None = None) -> BenchResult:
    """Run the bench: start the engine if asked, send each level, write as levels end."""
    check_options(options)
    prompts_given, source, targets, chat = _study_inputs(options)
    options.targets = targets
    if chat:
        options.endpoint = "chat"
    lengths = parse_lengths(options.prompt_tokens)
    cutter, tokenizer = _tokenizers(options)
    prompts: Prompts = (
        GivenPrompts(prompts_given, options.seed)
        if prompts_given is not None
        else SyntheticPrompts(lengths, options.seed, cutter)
    )
    writer = _Writer(options.out)
    api_key = os.environ.get("OPENAI_API_KEY") or None
    if options.serve is None:
        assert options.url is not None
        from llmselect.evaluation.backends.openai_http import check_credentials

        check_credentials(options.url, api_key, options.allow_insecure_http)
        check_certificate(options.url)
        return _measure(options.url, None, options, prompts, source, tokenizer, writer, progress)
    log_dir = options.out if options.out is not None else Path(tempfile.mkdtemp(prefix="bench-"))
    server = EngineServer(
        options.serve,
        log=log_dir / "engine.log",
        model=options.model,
        file=options.file,
        startup_timeout_s=options.startup_timeout_s or 600.0,
    )
    if progress:
        progress("starting the engine", 0, 1)
    with server:
        return _measure(server.url, server, options, prompts, source, tokenizer, writer, progress)


def _measure(
    url: str,
    server: EngineServer | None,
    options: BenchOptions,
    prompts: Prompts,
    source: str,
    tokenizer: Tokenizer | None,
    writer: _Writer,
    progress: Progress | None,
) -> BenchResult:
    api_key = None if server else (os.environ.get("OPENAI_API_KEY") or None)
    model = options.model or first_model(url, api_key)
    settings = RequestSettings(
        model=model,
        endpoint=options.endpoint,
        max_tokens=options.output_tokens,
        fixed_output=options.fixed_output,
        timeout_s=options.timeout_s,
        api_key=api_key,
    )
    result = BenchResult(
        url=url,
        model=model,
        endpoint=options.endpoint,
        prompt_source=source,
        prompt_tokens=options.prompt_tokens if source == "synthetic" else None,
        output_tokens=str(options.output_tokens),
        seed=options.seed,
        targets=options.targets,
        levels=[],
        engine=(
            Engine(command=server.command, log=str(server.log), startup_s=server.startup_s)
            if server
            else None
        ),
        complete=False,
        out=str(options.out) if options.out else None,
    )
    writer.summary(result)

    def on_level(level: Level, records: list[RequestRecord], summary: LevelSummary) -> None:
        writer.level(records)
        result.levels.append(summary)
        writer.summary(result)

    sweep = Sweep(
        url,
        settings,
        prompts,
        seed=options.seed,
        repeats=options.repeats,
        targets=options.targets,
        tokenizer=tokenizer,
        on_level=on_level,
        on_done=_progress_for(options, progress),
        check=(lambda: None if server.alive else "the engine exited") if server else None,
    )
    planned = levels(options)
    try:
        if options.knee:
            limit = options.max_concurrency or 64
            done: SweepResult = asyncio.run(sweep.knee(planned[0], limit, options.warmup))
        else:
            done = asyncio.run(sweep.run(planned))
    except BaseException as exc:  # Ctrl-C or a crash: what was measured is on disk
        result.error = f"stopped: {type(exc).__name__}"
        writer.summary(result)
        raise
    result.knee = done.knee
    if server is not None and not server.alive:
        result.error = server.died("the engine stopped during the bench").message
    elif done.stopped:
        result.error = done.stopped
    result.complete = result.error is None
    writer.summary(result)
    return result


def _progress_for(
    options: BenchOptions, progress: Progress | None
) -> Callable[[Level, int], Callable[[RequestRecord], None]] | None:
    if progress is None:
        return None
    bar = progress

    def for_level(level: Level, index: int) -> Callable[[RequestRecord], None]:
        total = (level.warmup + (level.requests or 0)) * options.repeats
        done = [0]

        def on_done(record: RequestRecord) -> None:
            done[0] += 1
            if level.requests is not None:
                bar(level.label, done[0], total)
            else:
                bar(level.label, done[0], done[0] + 1)

        return on_done

    return for_level


def bench_calibration_runs(
    summary: Path, *, model: str, gpu: str | None, engine: str, quant: str
) -> list[Measurement]:
    """A bench's levels as calibration runs for `fit`: at each concurrency level that completed
    requests, the decode speed each user saw (the median of 1 / TPOT) and the median time to
    first token, with the level's mean prompt and output lengths. `model`, `gpu`, `engine` and
    `quant` say what served it (a bench only knows the server's URL)."""
    import datetime

    from llmselect.catalog import load_catalog
    from llmselect.sizing.calibration import Measurement
    from llmselect.sizing.detect import target_hardware
    from llmselect.sizing.engines import get_engine
    from llmselect.sizing.quant import normalize

    result = read_bench(summary)
    card = load_catalog().get(model)
    device, count = target_hardware(gpu)
    engine_id, scheme = get_engine(engine).id, normalize(quant)
    when = datetime.datetime.now(datetime.UTC)
    runs = []
    for level in result.levels:
        per_user, ttft = level.output_tokens_per_s_per_user.p50, level.ttft_s.p50
        if level.profile != "concurrency" or not level.concurrency or not level.completed:
            continue  # a rate level has no fixed batch to size
        if per_user is None or ttft is None or not level.prompt_tokens:
            continue
        prompt = max(1, round(level.prompt_tokens / level.completed))
        output = max(1, round(level.output_tokens / level.completed))
        runs.append(
            Measurement(
                model=card.id,
                device=device.id,
                devices=count,
                engine=engine_id,
                quant=scheme,
                batch=level.concurrency,
                context=prompt + output,
                prompt_tokens=prompt,
                decode_tokens_per_s=per_user,
                ttft_s=ttft,
                measured_at=when,
                source=f"llmselect bench {result.url} ({result.model}), {summary}",
            )
        )
    if not runs:
        raise LLMSelectError(
            "the bench has no concurrency level with completed requests, prompt token counts, "
            "TTFT and decode speed to calibrate from",
            file=summary,
            hint="bench with --concurrency (not --rate) against a server that reports usage, "
            "or pass --tokenizer",
        )
    return runs
