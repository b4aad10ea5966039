"""`llmselect bench`: latency under load against an OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmselect.cli.common import JsonFlag, _escape, progress_bars, run


def _int_list(option: str, value: str | None) -> list[int]:
    if not value:
        return []
    try:
        numbers = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: give whole numbers separated by commas, e.g. 1,4,16", param_hint=option
        ) from None
    if not numbers or any(n < 1 or n > 65536 for n in numbers):
        raise typer.BadParameter(f"{value!r}: each between 1 and 65536", param_hint=option)
    return numbers


def _float_list(option: str, value: str | None) -> list[float]:
    if not value:
        return []
    try:
        numbers = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r}: give numbers separated by commas, e.g. 0.5,1,2", param_hint=option
        ) from None
    if not numbers or any(not 0 < n <= 100_000 for n in numbers):
        raise typer.BadParameter(f"{value!r}: each above 0, at most 100000", param_hint=option)
    return numbers


def bench(
    url: Annotated[
        str | None,
        typer.Argument(
            help="The server's OpenAI-compatible base URL (http://host:8000 or .../v1), or, "
            "with --study, the name of a study candidate (its server, or the engine its serve "
            "command starts); leave out with --serve."
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", help="The model's name on the server (default: the first it lists)."
        ),
    ] = None,
    concurrency: Annotated[
        str | None,
        typer.Option(
            "--concurrency", help="Requests in flight, one level each: 1,4,16 (default 1)."
        ),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option("--rate", help="Requests a second instead, one level each: 0.5,1,2."),
    ] = None,
    poisson: Annotated[
        bool, typer.Option("--poisson", help="With --rate: Poisson arrivals (seeded).")
    ] = False,
    knee: Annotated[
        bool,
        typer.Option(
            "--knee",
            help="Find the highest concurrency that meets the targets (1, 2, 4... then bisect).",
        ),
    ] = False,
    max_concurrency: Annotated[
        int | None,
        typer.Option(
            "--max-concurrency",
            min=1,
            help="Cap on requests in flight at a --rate; highest tried by --knee (default 64).",
        ),
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option("--requests", min=1, help="Measured requests per level (default 100)."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.1, help="Seconds per level instead of --requests."),
    ] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            "--warmup",
            min=0,
            help="Warm-up requests per level, left out of the figures (default: the level's "
            "concurrency, or one second of its rate).",
        ),
    ] = None,
    prompt_tokens: Annotated[
        str,
        typer.Option(
            "--prompt-tokens",
            help="Synthetic prompt length: 128, uniform:64-256 or normal:128,32.",
        ),
    ] = "128",
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=1, help="Tokens to generate per request.")
    ] = 128,
    free_output: Annotated[
        bool,
        typer.Option(
            "--free-output",
            help="Let the model stop early (default: ask for exactly --output-tokens with "
            "ignore_eos and min_tokens).",
        ),
    ] = False,
    chat: Annotated[
        bool, typer.Option("--chat", help="Send /v1/chat/completions (default /v1/completions).")
    ] = False,
    ttft_p95: Annotated[
        float | None,
        typer.Option("--ttft-p95", min=0.0, help="Target: seconds to the first token (p95)."),
    ] = None,
    tokens_per_s: Annotated[
        float | None,
        typer.Option("--tokens-per-s", min=0.0, help="Target: tokens a second each user sees."),
    ] = None,
    study: Annotated[
        Path | None,
        typer.Option(
            "--study",
            help="A study file: prompts from its dataset through its template, and its targets.",
        ),
    ] = None,
    tokenizer: Annotated[
        Path | None,
        typer.Option(
            "--tokenizer",
            help="The model's tokenizer (a GGUF file, a model folder or tokenizer.json): exact "
            "prompt lengths, and token counts where the server reports no usage.",
        ),
    ] = None,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Start the engine: a command with {model}, {file} and {port}, e.g. "
            "'python -m llama_cpp.server --model {file} --port {port}'.",
        ),
    ] = None,
    file: Annotated[
        str | None, typer.Option("--file", help="The model file, for {file} in --serve.")
    ] = None,
    startup_timeout: Annotated[
        float | None,
        typer.Option(
            "--startup-timeout",
            min=1.0,
            help="Seconds a started engine may take to answer (default: the candidate's, "
            "else 600).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seeds prompts and arrivals.")] = 0,
    repeats: Annotated[
        int,
        typer.Option(
            "--repeats", min=1, max=100, help="Runs per level; 2 or more give 95% intervals."
        ),
    ] = 1,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.01, help="Seconds a request may take.")
    ] = 60.0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for requests.jsonl and summary.json (written as levels end)."
        ),
    ] = None,
    allow_insecure_http: Annotated[
        bool,
        typer.Option(
            "--allow-insecure-http",
            help="Send OPENAI_API_KEY over plain http:// beyond this machine and private networks.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Latency under load: TTFT, ITL, TPOT and end-to-end percentiles, tokens and requests a
    second, errors and goodput, per load level.

    Against any OpenAI-compatible server (vLLM, SGLang, TGI, llama.cpp, Ollama), or one it
    starts with --serve and stops after."""
    from llmselect.jobs.bench import BenchOptions
    from llmselect.jobs.bench import bench as bench_job
    from llmselect.serving.results import Targets

    targets = (
        Targets(ttft_p95_s=ttft_p95 or None, tokens_per_s=tokens_per_s or None)
        if ttft_p95 or tokens_per_s
        else None
    )
    options = BenchOptions(
        url=url,
        model=model,
        endpoint="chat" if chat else "completions",
        concurrency=_int_list("--concurrency", concurrency),
        rates=_float_list("--rate", rate),
        poisson=poisson,
        knee=knee,
        max_concurrency=max_concurrency,
        requests=requests,
        duration_s=duration,
        warmup=warmup,
        prompt_tokens=prompt_tokens,
        output_tokens=output_tokens,
        fixed_output=not free_output,
        seed=seed,
        repeats=repeats,
        timeout_s=timeout,
        targets=targets,
        study=study,
        tokenizer=tokenizer,
        serve=serve,
        file=file,
        startup_timeout_s=startup_timeout,
        out=out,
        allow_insecure_http=allow_insecure_http,
    )
    with progress_bars(as_json) as progress:
        result = run(as_json, lambda: bench_job(options, progress=progress))
    from llmselect.present import present

    present(result, as_json=as_json)
    if not result.complete:
        from llmselect.present.text import err_console

        err_console().print(f"[bold red]error:[/] {_escape(result.error or 'stopped early')}")
        raise typer.Exit(1)
