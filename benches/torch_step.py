"""One MiniLM training step in PyTorch (batch 32 x 128 tokens, AdamW), full and LoRA q/v,
timed as the `nlp_step` criterion bench times ours. Prints one line of seconds per step.

Usage: python torch_step.py MINILM_DIR   (needs torch, transformers, peft)
"""
import sys

import torch
from torch_timing import time_steps
from transformers import AutoModelForSequenceClassification

minilm = sys.argv[1]
torch.manual_seed(0)
ids = (1000 + (torch.arange(32 * 128) * 7919) % 28000).reshape(32, 128)
labels = torch.arange(32) % 2


def step_timer(model, params):
    model.train()
    mask = torch.ones_like(ids)
    return time_steps(lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss,
                      params, lr=5e-5, weight_decay=0.01)


full = AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2)
t_full = step_timer(full, full.parameters())
result = f"torch {torch.__version__}, {torch.get_num_threads()} threads: full {t_full:.3f} s/step"
try:
    from peft import LoraConfig, get_peft_model

    base = AutoModelForSequenceClassification.from_pretrained(minilm, num_labels=2)
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query", "value"],
                     task_type="SEQ_CLS")
    lora = get_peft_model(base, cfg)
    t_lora = step_timer(lora, [p for p in lora.parameters() if p.requires_grad])
    result += f", lora {t_lora:.3f} s/step"
except ImportError:
    result += ", lora not timed (peft missing)"
print(result)
