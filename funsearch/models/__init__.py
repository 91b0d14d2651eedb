"""Small local language models, built on the spot with no download.

A model folder (tokenizer, config, weights) that vLLM and transformers load
like any Hugging Face checkpoint, so the vllm and openai samplers can be run
for real on a machine without a GPU or a model hub: by the tests, and by
experiments that compare sampler sizes (`build.py`).
"""
