"""Pure-PyTorch machine-learning core: no Django here, so it runs in any worker or script.

Submodules import torch themselves; importing this package stays cheap.
"""
