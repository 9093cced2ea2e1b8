"""Model presets: named architectures a YAML config can start from (`model: {preset: 8b}`).

Values are the architecture only; batch sizes, schedule and parallelism live in the run config.
`tiny` is sized so one CPU step takes well under a second; the large presets are meant for GPU
clusters and are exercised here only through `babelmill pretrain plan` (parameter counts and
memory estimates).
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    # CPU tests / demo. ~0.1M non-embedding parameters.
    "tiny": dict(
        num_layers=2, hidden_size=64, num_attention_heads=4, num_query_groups=2,
        ffn_hidden_size=128, seq_length=64, max_position_embeddings=64,
        position_embedding_type="rope", normalization="RMSNorm", swiglu=True,
        untie_embeddings_and_output_weights=False, init_method_std=0.02,
    ),
    # GPT-3 small-like, modernised (RoPE/SwiGLU/RMSNorm).
    "125m": dict(
        num_layers=12, hidden_size=768, num_attention_heads=12, num_query_groups=12,
        ffn_hidden_size=2048, seq_length=2048, max_position_embeddings=2048,
        position_embedding_type="rope", normalization="RMSNorm", swiglu=True,
        untie_embeddings_and_output_weights=False, init_method_std=0.02,
    ),
    "1.3b": dict(
        num_layers=24, hidden_size=2048, num_attention_heads=16, num_query_groups=16,
        ffn_hidden_size=5461, seq_length=2048, max_position_embeddings=2048,
        position_embedding_type="rope", normalization="RMSNorm", swiglu=True,
        untie_embeddings_and_output_weights=True, init_method_std=0.02,
    ),
    # FuxiTranyu-8B-like: Llama-style decoder, GQA (8 KV groups), 4k context, untied embeddings.
    "8b": dict(
        num_layers=32, hidden_size=4096, num_attention_heads=32, num_query_groups=8,
        ffn_hidden_size=14336, seq_length=4096, max_position_embeddings=4096,
        position_embedding_type="rope", rotary_base=500000, normalization="RMSNorm", swiglu=True,
        untie_embeddings_and_output_weights=True, init_method_std=0.008,
    ),
}


def preset(name: str) -> dict:
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None
