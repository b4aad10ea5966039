"""Facts of the 2025 large open families (Llama 4, DeepSeek-V3/R1, Kimi K2, GLM-4.5, gpt-oss).

The counts below were checked against the Hub's safetensors totals when the cards were written;
these tests pin the structure that makes them come out (layer kinds, dense and MoE layers,
lineage and licenses), so a later edit of a field cannot silently change what a card means.
"""

from __future__ import annotations

import pytest

from llmselect.catalog import count_params, load_builtin
from llmselect.catalog.schema import LayerKind, ModelCard

CATALOG = load_builtin()


def card(model_id: str) -> ModelCard:
    return CATALOG.get(model_id)


def test_llama4_text_models_and_their_layers() -> None:
    scout = card("meta-llama/Llama-4-Scout-17B-16E-Instruct")
    maverick = card("meta-llama/Llama-4-Maverick-17B-128E-Instruct")
    kinds = maverick.architecture.layer_kinds()
    assert kinds.count(LayerKind.chunked) == 36 and kinds.count(LayerKind.full) == 12
    assert kinds[3] == LayerKind.full
    assert count_params(scout.architecture).moe_layers == 48
    assert count_params(maverick.architecture).moe_layers == 24
    # The Hub checkpoint of Maverick-Instruct is the text model plus a 871,932,416-parameter
    # vision encoder and projector.
    assert count_params(maverick.architecture).total + 871_932_416 == 401_583_781_376
    assert scout.input_modalities == ["text", "image"]
    assert scout.licenses.weights == "llama4"


def test_llama33_is_catalogued_once_with_its_base() -> None:
    llama33 = card("meta-llama/Llama-3.3-70B-Instruct")
    assert llama33.family == "llama-3.3"
    assert llama33.base_model == "meta-llama/Llama-3.1-70B"
    assert llama33.licenses.weights == "llama3.3"
    assert llama33.architecture.num_local_experts is None


def test_deepseek_v3_main_model_and_license_history() -> None:
    v3 = card("deepseek-ai/DeepSeek-V3")
    counted = count_params(v3.architecture)
    assert counted.moe_layers == 58
    # The stored main model keeps 256 routing-correction biases per MoE layer the counter skips.
    assert v3.params == counted.total + 58 * 256
    assert v3.weights_format == "fp8-block"
    assert v3.licenses.weights == "deepseek"
    assert card("deepseek-ai/DeepSeek-V3-Base").licenses.weights == "deepseek"
    for later in ("DeepSeek-V3-0324", "DeepSeek-V3.1", "DeepSeek-R1", "DeepSeek-R1-0528"):
        assert card(f"deepseek-ai/{later}").licenses.weights == "mit"


@pytest.mark.parametrize(
    ("distill", "base"),
    [
        ("DeepSeek-R1-Distill-Qwen-1.5B", "Qwen/Qwen2.5-Math-1.5B"),
        ("DeepSeek-R1-Distill-Qwen-7B", "Qwen/Qwen2.5-Math-7B"),
        ("DeepSeek-R1-Distill-Qwen-14B", "Qwen/Qwen2.5-14B"),
        ("DeepSeek-R1-Distill-Qwen-32B", "Qwen/Qwen2.5-32B"),
        ("DeepSeek-R1-Distill-Llama-8B", "meta-llama/Llama-3.1-8B"),
        ("DeepSeek-R1-Distill-Llama-70B", "meta-llama/Llama-3.3-70B-Instruct"),
    ],
)
def test_r1_distills_bind_their_bases(distill: str, base: str) -> None:
    student = card(f"deepseek-ai/{distill}")
    assert student.base_model == base and base in CATALOG
    assert student.licenses.weights == "mit"
    assert student.weights_format is None and student.active_params is None
    assert not student.architecture.is_moe and student.architecture.kv_lora_rank is None


def test_distill_qwen_15b_unties_what_its_base_ties() -> None:
    student = card("deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B")
    base = card("Qwen/Qwen2.5-Math-1.5B")
    assert student.params is not None and base.params is not None
    assert base.architecture.tie_word_embeddings and not student.architecture.tie_word_embeddings
    assert student.params - base.params == 151_936 * 1_536


def test_kimi_k2_is_deepseek_v3_shaped() -> None:
    k2 = card("moonshotai/Kimi-K2-Instruct")
    counted = count_params(k2.architecture)
    assert counted.moe_layers == 60
    assert k2.params == counted.total + 60 * 384
    assert k2.licenses.weights == "modified-mit"
    assert card("moonshotai/Kimi-K2-Thinking").architecture.context_length == 262_144


def test_glm45_main_model_plus_mtp_layer_is_the_hub_total() -> None:
    glm = card("zai-org/GLM-4.5")
    h, vocab, experts, width = 5120, 151_552, 160, 1536
    attention = h * 12288 * 2 + h * 1024 * 2 + 12288 + 2048 + 2 * 128  # q/k/v bias, qk norm
    router = h * experts + experts  # with its correction bias
    experts_and_shared = (experts + 1) * 3 * h * width
    mtp_extras = 2 * h * h + 3 * h  # eh_proj, enorm, hnorm, shared_head.norm
    mtp_layer = attention + 2 * h + router + experts_and_shared + mtp_extras
    copies = 2 * vocab * h
    assert glm.params is not None
    assert glm.params + mtp_layer + copies == 358_337_791_296
    assert glm.architecture.qk_norm == "per-head"
    assert card("zai-org/GLM-4.5-Air").architecture.qk_norm == "none"


def test_glm4_0414_has_four_norms_per_layer() -> None:
    glm4 = card("zai-org/GLM-4-9B-0414")
    assert glm4.architecture.norms_per_layer == 4
    assert count_params(glm4.architecture).total == 9_400_279_040


def test_gpt_oss_shapes_and_release_format() -> None:
    for model_id, layers, experts, hub in (
        ("openai/gpt-oss-20b", 24, 32, 21_511_953_984),
        ("openai/gpt-oss-120b", 36, 128, 120_412_337_472),
    ):
        gpt = card(model_id)
        kinds = gpt.architecture.layer_kinds()
        assert kinds[0] == LayerKind.sliding and kinds[1] == LayerKind.full
        assert gpt.weights_format == "mxfp4"
        assert gpt.licenses.weights == "apache-2.0 and gpt-oss-usage-policy"
        # The Hub total adds one MXFP4 scale per 32 expert weights.
        expert_weights = layers * experts * 3 * 2880 * 2880
        assert gpt.params is not None
        assert gpt.params + expert_weights // 32 == hub
