"""Facts of the 2025 Mistral, Command, EXAONE and Nemotron cards that the counts alone don't pin."""

from __future__ import annotations

from llmselect.catalog import count_params, load_builtin
from llmselect.catalog.params import all_layers
from llmselect.catalog.schema import LayerKind

CATALOG = load_builtin()


def test_ministral_8b_ragged_attention_is_one_full_layer_in_four() -> None:
    arch = CATALOG.get("mistralai/Ministral-8B-Instruct-2410").architecture
    kinds = arch.layer_kinds()
    assert kinds[:4] == [LayerKind.full, LayerKind.sliding, LayerKind.sliding, LayerKind.sliding]
    assert kinds.count(LayerKind.full) == 9 and arch.sliding_window == 32768
    assert count_params(arch).total == 8_019_808_256  # the model card's stated count


def test_cohere2_and_exaone4_interleave_three_sliding_layers_with_one_global() -> None:
    for model in ("CohereLabs/c4ai-command-r7b-12-2024", "LGAI-EXAONE/EXAONE-4.0-32B"):
        kinds = CATALOG.get(model).architecture.layer_kinds()
        assert kinds[3] == LayerKind.full and kinds[:3] == [LayerKind.sliding] * 3, model
        assert kinds[-1] == LayerKind.full, model
    # EXAONE 4.0 1.2B has no sliding layers.
    small = CATALOG.get("LGAI-EXAONE/EXAONE-4.0-1.2B").architecture
    assert set(small.layer_kinds()) == {LayerKind.full}


def test_cohere_layout_one_bias_free_layernorm_and_tied_embeddings() -> None:
    arch = CATALOG.get("CohereLabs/c4ai-command-r-08-2024").architecture
    assert (arch.norm, arch.norms_per_layer, arch.parallel_attention) == (
        "layernorm-no-bias",
        1,
        True,
    )
    assert arch.tie_word_embeddings


def test_multimodal_mistral_cards_count_the_text_decoder() -> None:
    for model in (
        "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
        "mistralai/Magistral-Small-2509",
        "mistralai/Ministral-3-14B-Instruct-2512",
    ):
        card = CATALOG.get(model)
        assert card.input_modalities == ["text", "image"], model
        assert count_params(card.architecture).total == card.params, model


def test_structures_the_schema_cannot_express_stay_incomplete() -> None:
    for model in (
        "nvidia/Llama-3_3-Nemotron-Super-49B-v1",  # heterogeneous NAS blocks
        "CohereLabs/c4ai-command-a-03-2025",  # layer and head counts not sourced
    ):
        assert not CATALOG.get(model).architecture.is_complete, model


def _blocks(pattern: str) -> list[LayerKind]:
    """Nemotron-H's hybrid_override_pattern, one character a block."""
    kinds = {"M": LayerKind.mamba2, "*": LayerKind.full, "-": LayerKind.mlp, "E": LayerKind.moe}
    return [kinds[c] for c in pattern]


def test_nemotron_nano_2_stack_is_the_published_pattern_and_counts_the_hub_total() -> None:
    pattern = _blocks("M-M-M-MM-M-M-M*-M-M-M*-M-M-M-M*-M-M-M-M*-M-MM-M-M-M-M-M-")
    for model in ("nvidia/NVIDIA-Nemotron-Nano-9B-v2", "nvidia/NVIDIA-Nemotron-Nano-9B-v2-Base"):
        card = CATALOG.get(model)
        arch = card.architecture
        assert arch.layer_kinds() == pattern, model
        assert [arch.layer_kinds().count(k) for k in (LayerKind.mamba2, LayerKind.full)] == [27, 4]
        assert arch.mlp_in_own_blocks and arch.mlp == "plain" and arch.norms_per_layer == 1
        assert count_params(arch).total == card.params == 8_888_227_328, model
    # Mamba-2 and attention blocks carry no MLP; the 25 MLP blocks are up/down of width 15680.
    arch = CATALOG.get("nvidia/NVIDIA-Nemotron-Nano-9B-v2").architecture
    layers = all_layers(arch)
    assert all(w.up == w.down == 0 for w in layers if w.kind != LayerKind.mlp)
    assert {(w.up, w.down) for w in layers if w.kind == LayerKind.mlp} == {(4480 * 15680,) * 2}


def test_nemotron_3_nano_routes_only_in_its_moe_blocks() -> None:
    card = CATALOG.get("nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16")
    arch = card.architecture
    assert arch.layer_kinds() == _blocks("MEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEM*EMEMEMEM*EMEMEMEME")
    counted = count_params(arch)
    assert counted.total == card.params == 31_577_937_344  # the Hub total
    assert counted.moe_layers == 23
    # The report: 3.6B active with the embeddings, 3.2B without the embedding lookup.
    assert counted.active == card.active_params == 3_580_073_408
    assert counted.active - counted.embedding == 3_227_751_872
    moe = [i for i, kind in enumerate(arch.layer_kinds()) if kind == LayerKind.moe]
    assert [i for i in range(52) if arch.is_moe_layer(i)] == moe


def test_license_changes_across_mistral_releases() -> None:
    weights = {
        m: CATALOG.get(m).licenses.weights
        for m in (
            "mistralai/Codestral-22B-v0.1",
            "mistralai/Mistral-Small-Instruct-2409",
            "mistralai/Mistral-Small-24B-Instruct-2501",
        )
    }
    assert list(weights.values()) == ["mnpl", "mrl", "apache-2.0"]
