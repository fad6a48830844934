"""``torch.compile`` of a ternary model: one graph, no recompilation (issue 20, item 3).

In eager mode the grouped ternarizer (``ttq_core.quantize.grouped``) hands every layer its
ternary weight from a forward pre-hook, checked against the latent weight's version
counter.  Dynamo could not trace that (a data-dependent ``repeat_interleave`` in the hook,
the version counter in ``effective_weight``): every layer's ``effective_weight`` became a
separate frame guarded on its shape, so a network recompiled once per layer shape until
dynamo's recompile limit and fell back to eager.  Under compilation each layer now
ternarizes its own weight (the per-layer reference function, which the compiler fuses).

The test compiles a small ternary network with ``fullgraph=True`` (a graph break raises)
and ``error_on_recompile`` (a recompilation raises) on the ``eager`` backend (no code
generation: fast), runs two training steps with optimizer updates in between, and
checks one captured graph and the same losses and gradients as the eager model.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ttq_core.quantize import ternarize


def _small_net() -> nn.Module:
    # several layer shapes (the storm was one recompilation per shape), stride 2, a linear
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1, bias=False), nn.ReLU(),
        nn.Conv2d(8, 8, 1, bias=False), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def test_compiled_ternary_model_is_one_graph_without_recompiles():
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch.manual_seed(0)
    eager = ternarize(_small_net(), keep_fp=[])
    model = copy.deepcopy(eager)
    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    opts = [torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9) for m in (eager, model)]
    x = torch.randn(4, 3, 8, 8)
    y = torch.randint(0, 10, (4,))
    with torch._dynamo.config.patch(error_on_recompile=True):
        for _ in range(2):
            losses = []
            for net, fn, opt in ((eager, eager, opts[0]), (model, compiled, opts[1])):
                loss = F.cross_entropy(fn(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                losses.append(loss.detach())
            torch.testing.assert_close(losses[1], losses[0])
            for (name, p), q in zip(eager.named_parameters(), model.parameters()):
                torch.testing.assert_close(q.grad, p.grad, msg=name)
            for opt in opts:
                opt.step()
    assert counters["stats"]["unique_graphs"] == 1
    assert not counters["recompiles"]
    torch._dynamo.reset()
