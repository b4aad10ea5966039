"""A tiny Llama GGUF file written on the fly: random F32 weights and a SentencePiece vocabulary.

The vocabulary is the fewest moving parts llama.cpp accepts: `tokenizer.ggml.model = llama`
(SPM) with <unk>, <s>, </s>, the 256 byte-fallback tokens, single characters and, for a few
words, every prefix of "▁word" (SPM merges two pieces only when the joined piece is in the
vocabulary), so that whole words are single tokens and a space can join the next token.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest

WORDS = ["Paris", "London", "Rome", "four", "capital", "What", "the", "is", "of", "A", "Q"]
HIDDEN, LAYERS, HEADS, KV_HEADS, FFN, CONTEXT = 64, 2, 4, 2, 128, 256

# Token types, as gguf.TokenType numbers them.
NORMAL, UNKNOWN, CONTROL, BYTE = 1, 2, 3, 6


def vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [UNKNOWN, CONTROL, CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [BYTE] * 256
    pieces = ["▁", *string.ascii_letters, *string.digits, *".,:;?!'()-[]|<>/="]
    for word in WORDS:
        pieces += [("▁" + word)[:n] for n in range(2, len(word) + 2)]
    for piece in dict.fromkeys(pieces):
        tokens.append(piece)
        types.append(NORMAL)
    # A longer piece scores higher, so SPM prefers the longest merge.
    scores = [0.0 if t != NORMAL else float(len(p)) for p, t in zip(tokens, types, strict=True)]
    return tokens, scores, types


def write_tiny_gguf(
    path: Path,
    *,
    seed: int,
    chat_template: str | None = None,
    ends_at_once: bool = False,
    license: str | None = None,
) -> Path:
    """`ends_at_once`: the model's first answer is always its end-of-sequence token; `license`
    goes to `general.license`, as llama.cpp's converter writes the card's license."""
    gguf = pytest.importorskip("gguf")
    tokens, scores, types = vocabulary()
    vocab, head_dim = len(tokens), HIDDEN // HEADS
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    if license:
        writer.add_license(license)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(head_dim)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    if chat_template:
        writer.add_chat_template(chat_template)

    rng = np.random.default_rng(seed)

    def linear(rows: int, columns: int) -> np.ndarray:
        return (rng.standard_normal((rows, columns)) / np.sqrt(columns)).astype(np.float32)

    embeddings = rng.standard_normal((vocab, HIDDEN)).astype(np.float32)
    # Sharper than the layers, so the next token is not a near-uniform choice.
    output = 4 * linear(vocab, HIDDEN)
    if ends_at_once:
        # Every token carries a large positive feature 0 through the residual stream, and only
        # </s> reads it: </s> is always the most likely next token.
        embeddings[:, 0] = 50.0
        output[:, 0] = 0.0
        output[2, 0] = 10.0
    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for i in range(LAYERS):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_q.weight", linear(HIDDEN, HIDDEN))
        writer.add_tensor(f"blk.{i}.attn_k.weight", linear(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"blk.{i}.attn_v.weight", linear(KV_HEADS * head_dim, HIDDEN))
        writer.add_tensor(f"blk.{i}.attn_output.weight", linear(HIDDEN, HIDDEN))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", linear(FFN, HIDDEN))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", linear(FFN, HIDDEN))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", linear(HIDDEN, FFN))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
