"""Few-shot Chinese-character style transfer: a style encoder pooled over k references and a
U-Net generator with FiLM at every scale (see model.py), trained on rendered fonts."""
