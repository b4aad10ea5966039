"""Memory model: hand-computed KV caches, dtype and GGUF weight sizes against real files."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmselect.catalog import count_params, load_builtin
from llmselect.sizing.engines import get_engine
from llmselect.sizing.estimate import estimate, kv_bytes_per_token, memory
from llmselect.sizing.hardware import find_device, parse_gpu
from llmselect.sizing.quant import (
    active_weight_bytes,
    decode_weight_bytes,
    distinct_experts,
    weight_bytes,
)

CATALOG = load_builtin()


def arch(model_id: str):  # type: ignore[no-untyped-def]
    return CATALOG.get(model_id).architecture


def test_kv_cache_per_token_hand_computed() -> None:
    # 32 layers x 32 KV heads x 128 x 2 (K and V) x 2 bytes = 512 KiB
    assert kv_bytes_per_token(arch("meta-llama/Llama-2-7b-hf")) == 512 * 1024
    # 80 layers x 8 KV heads (GQA) x 128 x 2 x 2 bytes = 320 KiB
    assert kv_bytes_per_token(arch("meta-llama/Llama-2-70b-hf")) == 320 * 1024
    # fp8 KV halves it; Falcon-7B is multi-query: 32 layers x 1 x 64 x 2 x 2 = 8 KiB
    assert kv_bytes_per_token(arch("meta-llama/Llama-2-70b-hf"), "fp8") == 160 * 1024
    assert kv_bytes_per_token(arch("tiiuae/falcon-7b")) == 8 * 1024


def test_dtype_weights_are_params_times_bytes() -> None:
    a = arch("meta-llama/Llama-2-7b-hf")
    params = count_params(a).total
    assert weight_bytes(a, "bf16") == 2 * params
    assert weight_bytes(a, "fp32") == 4 * params
    assert weight_bytes(a, "int8") == params
    # AWQ keeps embeddings and LM head at 16 bits: between int4 and int8.
    assert weight_bytes(a, "int4") < weight_bytes(a, "awq") < weight_bytes(a, "int8")


# Real GGUF files and their sizes (benchmarks/data/gguf_file_sizes.yaml says where from).
GGUF_FILES = [
    (f["model"], f["quant"], f["bytes"])
    for f in yaml.safe_load(
        (Path(__file__).parents[2] / "benchmarks" / "data" / "gguf_file_sizes.yaml").read_text()
    )["files"]
]


@pytest.mark.parametrize(("model", "quant", "size"), GGUF_FILES)
def test_gguf_weights_match_real_file_sizes(model: str, quant: str, size: int) -> None:
    predicted = weight_bytes(arch(model), quant)
    assert predicted <= size  # the file adds a header
    assert (size - predicted) / size < 0.001


def test_mixed_k_quants_sit_between_their_parts() -> None:
    a = arch("meta-llama/Llama-2-7b-hf")
    assert weight_bytes(a, "Q4_K_S") < weight_bytes(a, "Q4_K_M") < weight_bytes(a, "Q5_K_M")
    assert weight_bytes(a, "Q3_K_M") < weight_bytes(a, "Q3_K_L") < weight_bytes(a, "Q4_K_M")


def test_moe_reads_only_routed_experts() -> None:
    a = arch("mistralai/Mixtral-8x7B-v0.1")
    full, active = weight_bytes(a, "bf16"), active_weight_bytes(a, "bf16")
    # 12,879,925,248 active parameters, less the input embedding (32000 x 4096), of which a
    # decode step reads one row.
    assert active / full == pytest.approx((12_879_925_248 - 32000 * 4096) / 46_702_792_704)


def test_moe_batch_reads_more_experts_as_it_grows() -> None:
    a = arch("mistralai/Mixtral-8x7B-v0.1")  # 8 experts, 2 per token, 32 layers
    experts = 32 * 8 * 3 * 4096 * 14336 * 2  # all routed experts' bytes at bf16
    one = decode_weight_bytes(a, "bf16", 1)
    # Uniform routing: a batch of 4 touches 8 x (1 - (6/8)^4) = 5.47 experts per layer.
    assert distinct_experts(8, 2, 4) == pytest.approx(8 * (1 - 0.75**4))
    four = decode_weight_bytes(a, "bf16", 4)
    assert four - one == pytest.approx(experts * (distinct_experts(8, 2, 4) - 2) / 8, abs=2)
    # A large batch reads every expert: the whole model but the embedding table.
    assert decode_weight_bytes(a, "bf16", 512) == pytest.approx(
        weight_bytes(a, "bf16") - 2 * 32000 * 4096, rel=1e-9
    )


def test_tensor_parallel_splits_weights_and_cache() -> None:
    device = find_device("H100-80GB")
    engine = get_engine("vllm")
    a = arch("meta-llama/Llama-2-70b-hf")
    one = memory(a, "bf16", device, 1, engine, 4096, 1)
    two = memory(a, "bf16", device, 2, engine, 4096, 1)
    assert two.weights_bytes == pytest.approx(one.weights_bytes / 2, abs=1)
    assert two.kv_cache_bytes == pytest.approx(one.kv_cache_bytes / 2, abs=1)


def test_sliding_window_cache_follows_each_engine() -> None:
    a = arch("mistralai/Mistral-7B-v0.1")  # every layer slides over 4096 tokens
    device = find_device("A100-80GB")

    def kv(engine: str) -> int:
        return memory(a, "bf16", device, 1, get_engine(engine), 32768, 1).kv_cache_bytes

    per_token = kv_bytes_per_token(a)
    assert kv("transformers-compiled") == per_token * 4096  # a static window
    assert kv("transformers-eager") == per_token * 4095  # the dynamic cache keeps window - 1
    assert kv("vllm") == per_token * 4096  # the hybrid KV cache manager
    assert kv("llama.cpp") == per_token * (4096 + 512)  # window plus one ubatch


def test_interleaved_layers_keep_the_window_only_where_they_slide() -> None:
    # gemma-2-9b: 42 layers alternating sliding (4096) and global, 8 KV heads x 256, bf16.
    a = arch("google/gemma-2-9b")
    device = find_device("A100-80GB")
    layer_token = 2 * 8 * 256 * 2
    m = memory(a, "bf16", device, 1, get_engine("vllm"), 8192, 1)
    shares = {s.kind: s for s in m.kv_cache_by_kind}
    assert shares["full"].layers == shares["sliding"].layers == 21
    assert shares["full"].bytes == 21 * layer_token * 8192
    assert shares["sliding"].bytes == 21 * layer_token * 4096
    # 8k of context: 2.11 GB as vLLM keeps it; 2.82 GB if every layer kept all, 1.41 GB if every
    # layer were capped at the window (what the transformers profile used to assume).
    assert m.kv_cache_bytes == 21 * layer_token * (8192 + 4096)


def test_largest_context_and_batch_are_tight() -> None:
    card = CATALOG.get("meta-llama/Llama-2-13b-hf")
    device = find_device("RTX-4090")
    engine = get_engine("llama.cpp")
    fit = estimate(card, device, 1, engine, quant="Q4_K_M", context=4096, batch=1)
    assert fit.fits and fit.max_batch >= 1
    at_max = memory(card.architecture, "Q4_K_M", device, 1, engine, 4096, fit.max_batch)
    over = memory(card.architecture, "Q4_K_M", device, 1, engine, 4096, fit.max_batch + 1)
    assert at_max.total_bytes <= device.memory_bytes < over.total_bytes


def test_decode_is_memory_bound_at_batch_one() -> None:
    card = CATALOG.get("meta-llama/Llama-2-7b-hf")
    device = find_device("H100-80GB")
    engine = get_engine("vllm")
    fit = estimate(card, device, 1, engine, quant="bf16", context=2048, batch=1, prompt_tokens=1024)
    weights = 2 * (6_738_415_616 - 32000 * 4096)  # all but the embedding table, of which a
    kv = 512 * 1024 * 2048 * (1024 + 2048) / (2 * 2048)  # step reads one row
    expected = device.memory_bandwidth * engine.bandwidth_efficiency / (weights + kv)
    assert fit.estimates.decode_bound == "memory"
    assert fit.estimates.decode_tokens_per_s == pytest.approx(expected, rel=1e-6)
    # Batching raises throughput until compute bounds it (short sequences, GQA: small caches).
    # With vLLM's sourced efficiencies (0.52 of bandwidth, 0.67 of compute) the knee on an H100
    # is near batch 380 before the KV cache is counted; 1,024 is well past it.
    llama3 = CATALOG.get("meta-llama/Meta-Llama-3-8B")
    small = estimate(llama3, device, 1, engine, quant="bf16", context=128, batch=1)
    big = estimate(llama3, device, 1, engine, quant="bf16", context=128, batch=1024)
    assert small.estimates.decode_bound == "memory"
    assert big.estimates.decode_bound == "compute"
    assert big.estimates.total_tokens_per_s > 50 * small.estimates.total_tokens_per_s


def test_prefill_runs_weights_at_the_schemes_precision_and_attention_at_16_bits() -> None:
    card = CATALOG.get("meta-llama/Llama-2-7b-hf")  # 32 layers x 32 heads of 128
    engine = get_engine("vllm")
    prompt = 1000
    linear = 2 * count_params(card.architecture).active * prompt
    attention = 2 * 32 * 32 * 128 * prompt * prompt

    def ttft(device_id: str, quant: str) -> float:
        device = find_device(device_id)
        fit = estimate(
            card, device, 1, engine, quant=quant, context=2048, batch=1, prompt_tokens=prompt
        )
        return fit.estimates.ttft_s

    eff = engine.compute_efficiency
    # H100 SXM: 989.4 dense bf16 TFLOP/s, 1978.9 fp8 and int8.
    assert ttft("H100-80GB", "bf16") == pytest.approx((linear + attention) / (989.4e12 * eff))
    assert ttft("H100-80GB", "fp8") == pytest.approx(
        linear / (1978.9e12 * eff) + attention / (989.4e12 * eff)
    )
    assert ttft("H100-80GB", "int8") == pytest.approx(ttft("H100-80GB", "fp8"))
    # Weight-only schemes dequantize: 16-bit matrix products, like bf16.
    assert ttft("H100-80GB", "awq") == pytest.approx(ttft("H100-80GB", "bf16"))
    # An A100 has int8 tensor cores (624 TOP/s) but none for fp8 (weight-only fp8 there).
    assert ttft("A100-80GB", "int8") == pytest.approx(
        linear / (624e12 * eff) + attention / (312e12 * eff)
    )
    assert ttft("A100-80GB", "fp8") == pytest.approx(ttft("A100-80GB", "bf16"))


@pytest.mark.parametrize(
    ("spec", "device_id", "count"),
    [
        ("H100-80GB", "H100-SXM-80GB", 1),
        ("2x RTX-4090", "RTX-4090-24GB", 2),
        ("a100-80gb x4", "A100-SXM-80GB", 4),
        ("H100*8", "H100-SXM-80GB", 8),
        ("M2 Ultra", "M2-Ultra-192GB", 1),
    ],
)
def test_parse_gpu(spec: str, device_id: str, count: int) -> None:
    device, n = parse_gpu(spec)
    assert (device.id, n) == (device_id, count)


def test_every_device_figure_has_a_source() -> None:
    from llmselect.sizing.hardware import load_devices

    devices = load_devices()
    assert len(devices) >= 40
    for device in devices.values():
        assert {"memory", "bandwidth", "compute"} <= set(device.sources), device.id


def test_llama_cpp_offloads_layers_that_do_not_fit() -> None:
    card = CATALOG.get("meta-llama/Llama-2-70b-hf")
    device = find_device("RTX-4090")
    engine = get_engine("llama.cpp")
    fit = estimate(card, device, 1, engine, quant="Q4_K_M", context=4096, batch=1)
    assert not fit.fits and fit.offload is not None
    o = fit.offload
    assert 0 < o.gpu_layers < o.layers == 80
    # What stays on the GPU fits, one more layer would not.
    per_layer = (fit.memory.weights_bytes + fit.memory.kv_cache_bytes) / 80
    fixed = fit.memory.total_bytes - fit.memory.weights_bytes - fit.memory.kv_cache_bytes
    assert fixed + o.gpu_layers * per_layer <= device.memory_bytes
    assert fixed + (o.gpu_layers + 1) * per_layer > device.memory_bytes
    assert o.decode_tokens_per_s < fit.estimates.decode_tokens_per_s
    fits = estimate(
        CATALOG.get("meta-llama/Llama-2-7b-hf"),
        device,
        1,
        engine,
        quant="Q4_K_M",
        context=4096,
        batch=1,
    )
    assert fits.fits and fits.offload is None
