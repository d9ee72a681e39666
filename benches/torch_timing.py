"""What the PyTorch step scripts share: the median of `n` AdamW steps after a warm-up."""
import time

import torch


def time_steps(loss_fn, params, lr, weight_decay, n=5):
    """Seconds per step of forward (`loss_fn()`), backward and AdamW, median of `n`."""
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    out = []
    for i in range(n + 1):
        t = time.perf_counter()
        loss_fn().backward()
        opt.step()
        opt.zero_grad()
        if i:  # the first step warms up
            out.append(time.perf_counter() - t)
    return sorted(out)[len(out) // 2]
