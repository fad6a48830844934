"""ttq_analysis: measures a model (dense FLOPs, ternary ops, sparsity, energy).

Placeholder package: the analysis object arrives with the analysis issue.
"""
