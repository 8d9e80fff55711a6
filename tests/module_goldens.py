"""Every spec's generated module, fingerprinted: its state_dict keys and shapes, and its output in
eval mode for weights fixed by key (each tensor seeded from its name, so the registration order does
not matter). tests/golden/modules.json holds the figures recorded before the op-registry and naming
changes; test_module_goldens.py compares today's code with them.

    python -m tests.module_goldens > tests/golden/modules.json   # re-record (only for a listed fix)
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

SPECS = Path(__file__).resolve().parent.parent / "specs"
NETWORK_SPECS = sorted(p.name for p in SPECS.glob("*.rd") if p.name != "std.rd")


def fingerprint(spec: str) -> dict:
    import torch

    from resdsl.backends.pytorch.codegen import render_model
    from resdsl.backends.pytorch.verify import load_module
    from resdsl.ir.pipeline import load_network

    ir = load_network(SPECS / spec)
    module = load_module(render_model(ir, f"specs/{spec}"))
    model = module.build_model()
    state = model.state_dict()
    keys = [[k, list(v.shape)] for k, v in state.items()]
    with torch.no_grad():
        for k, v in state.items():
            if v.is_floating_point():
                gen = torch.Generator().manual_seed(zlib.crc32(k.encode()))
                if k.endswith("running_var"):
                    v.copy_(torch.rand(v.shape, generator=gen) + 0.5)
                else:
                    v.copy_(torch.randn(v.shape, generator=gen) * (1.0 / max(1, v[0].numel()) ** 0.5))
        model.eval()
        x = torch.randn((2, *ir.input_shape), generator=torch.Generator().manual_seed(0))
        out = model(x).double()
    return {
        "keys": hashlib.sha256(json.dumps(keys).encode()).hexdigest(),
        "tensors": len(keys),
        "output_shape": list(out.shape),
        "output": [round(float(v), 6) for v in out.flatten()[:8]],
        "output_sum": float(out.sum()),
        "output_abs_sum": float(out.abs().sum()),
    }


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    print(json.dumps({spec: fingerprint(spec) for spec in NETWORK_SPECS}, indent=1))
