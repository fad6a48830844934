"""ttq_core: models, TTQ quantizer, CIFAR-10 data, training and checkpoint I/O.

This package imports neither ttq_analysis nor reports, and never fvcore.
"""

__version__ = "0.2.0"
