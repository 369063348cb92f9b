"""Greedy chat generation with a base model, through its own chat template."""

from __future__ import annotations


def chat_generate(base_model: str, prompt: str, *, max_new_tokens: int = 48, model=None, tokenizer=None) -> str:
    import torch

    from cognitivetwin_core.models.loader import load_base_model

    if model is None or tokenizer is None:
        model, tokenizer = load_base_model(base_model)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    with torch.inference_mode():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[0][inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new_tokens, skip_special_tokens=True).strip()
