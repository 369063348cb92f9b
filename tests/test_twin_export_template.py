"""An exported twin keeps its chat template: in the merged folder's tokenizer and as an explicit
Ollama TEMPLATE with stop parameters; the README says Ollama imports (and quantizes) the folder."""

from __future__ import annotations


def test_export_keeps_the_chat_template(tiny_model_dir, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cognitivetwin_core.models.loader import load_base_model
    from cognitivetwin_core.phase1.adapter_archive import write_lineage
    from cognitivetwin_core.phase1.twin_export import export_twin

    model, tokenizer = load_base_model(tiny_model_dir)
    torch.manual_seed(0)
    twin = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    adapter = tmp_path / "adapter"
    twin.save_pretrained(str(adapter))
    write_lineage(adapter, {"base_model": str(tiny_model_dir)})

    export = export_twin(adapter, tmp_path / "export", base_model=tiny_model_dir)
    merged = AutoModelForCausalLM.from_pretrained(export.merged_dir, local_files_only=True)
    exported = AutoTokenizer.from_pretrained(export.merged_dir, local_files_only=True)
    messages = [{"role": "system", "content": "Be yourself."}, {"role": "user", "content": "all right?"}]
    for generation_prompt in (True, False):
        assert exported.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=generation_prompt
        ) == tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    ids = tokenizer("hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, twin(input_ids=ids).logits, atol=1e-4)

    modelfile = (export.output_dir / "Modelfile.merged").read_text()
    assert modelfile.splitlines()[1] == "FROM ./merged"
    assert 'TEMPLATE """{{- range .Messages }}<|im_start|>{{ .Role }}' in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile and 'PARAMETER stop "<|im_start|>"' in modelfile
    default_system = tokenizer.apply_chat_template([{"role": "user", "content": "x"}], tokenize=False)
    assert 'SYSTEM """' in modelfile and modelfile.split('SYSTEM """')[1].split('"""')[0] in default_system
    readme = (export.output_dir / "README.txt").read_text()
    assert "--quantize q4_K_M" in readme and "chat template" in readme
