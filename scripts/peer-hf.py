#!/usr/bin/env python3
"""Peer baseline for `eagle bench-device`: Hugging Face transformers' greedy generate on the same model
shapes with random weights (made on the device from the config), plain decoding tokens/s. Prints one
JSON object. Exit 3, with one line on stderr, when torch, transformers or the device is missing."""
import argparse
import json
import sys
import time

# the shapes of src/model/synthetic.ts
SHAPES = {
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rope_theta=10000.0),
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
    "tiny": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=4096, max_position_embeddings=2048, rope_theta=10000.0),
}


def unavailable(what):
    print(f"peer-hf: {what}", file=sys.stderr)
    sys.exit(3)


try:
    import torch
except ImportError:
    unavailable("torch is missing")
try:
    import transformers
    from transformers import LlamaConfig, LlamaForCausalLM
except ImportError:
    unavailable("transformers is missing")


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def timed_generate(model, prompt, new_tokens, device):
    """Seconds of one greedy generate of exactly `new_tokens` tokens (end-of-sequence ignored)."""
    sync(device)
    t0 = time.perf_counter()
    model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=new_tokens,
                   min_new_tokens=new_tokens, pad_token_id=0)
    sync(device)
    return time.perf_counter() - t0


def bench_shape(name, a, dtype):
    fields = dict(SHAPES[name], rms_norm_eps=1e-5, tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
    try:
        config = LlamaConfig(**fields)
    except TypeError:  # a transformers that takes RoPE settings another way: theta does not change the speed
        fields.pop("rope_theta")
        config = LlamaConfig(**fields)
    torch.manual_seed(a.seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # weights are made in the compute dtype, directly on the device
    try:
        with torch.device(a.device):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)
    vocab = SHAPES[name]["vocab_size"]
    prompt = ((torch.arange(a.prompt, device=a.device) * 7919) % (vocab - 3) + 3).unsqueeze(0)
    with torch.inference_mode():
        for _ in range(a.warmup):
            timed_generate(model, prompt, 8, a.device)
        # decode time = generate(1 + n) - generate(1): the prompt's prefill and first token cancel out
        first = min(timed_generate(model, prompt, 1, a.device) for _ in range(3))
        full = timed_generate(model, prompt, 1 + a.new_tokens, a.device)
    del model
    if a.device == "cuda":
        torch.cuda.empty_cache()
    decode_s = max(full - first, 1e-9)
    return {"shape": name, "prompt_tokens": a.prompt, "new_tokens": a.new_tokens, "prefill_ms": 1000 * first,
            "decode_ms_per_token": 1000 * decode_s / a.new_tokens, "decode_tokens_per_s": a.new_tokens / decode_s}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--shape", default="llama2-7b,llama3-8b", help="comma list of " + ", ".join(SHAPES))
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    p.add_argument("--prompt", type=int, default=512, help="prompt tokens (the context bench-device decodes at)")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    names = [s for s in a.shape.split(",") if s]
    for s in names:
        if s not in SHAPES:
            p.error(f"unknown shape {s}")
    if a.device == "cuda" and not torch.cuda.is_available():
        unavailable("CUDA is not available to torch")
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[a.dtype]
    report = {"peer": "transformers generate (greedy, default cache)", "transformers": transformers.__version__,
              "torch": torch.__version__, "device": a.device, "dtype": a.dtype,
              "gpu": torch.cuda.get_device_name(0) if a.device == "cuda" else None,
              "shapes": [bench_shape(s, a, dtype) for s in names]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
