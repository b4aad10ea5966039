"""Tiny local models built on the fly: a byte-level BPE tokenizer and a 2-layer Llama."""

from __future__ import annotations

from pathlib import Path

import pytest

CORPUS = [
    "Q: What is the capital of France? A: Paris",
    "Q: What is the capital of England? A: London",
    "Q: What is the capital of Italy? A: Rome",
    "Q: What is two plus two? A: four",
] * 20


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_tiny_model(folder: Path, seed: int, chat_template: str | None = None) -> Path:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<pad>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="</s>"
    )
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=len(fast),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=fast.pad_token_id,
        eos_token_id=fast.eos_token_id,
        bos_token_id=None,
    )
    model = transformers.LlamaForCausalLM(config)
    if chat_template:
        fast.chat_template = chat_template
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("models")
    # tiny-a has a chat template, tiny-b has none.
    return (
        build_tiny_model(root / "tiny-a", 1, CHAT_TEMPLATE),
        build_tiny_model(root / "tiny-b", 2),
    )


SHORT_CONTEXT = 16
"""Positions of `short_context_model`: texts of a few words already need several windows."""


@pytest.fixture(scope="session")
def short_context_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose config says it reads at most 16 tokens (rotary positions: the weights
    do not change, only what the model declares as its maximum length)."""
    import json

    folder = build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-short", 3)
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    config["max_position_embeddings"] = SHORT_CONTEXT
    config_path.write_text(json.dumps(config))
    return folder
