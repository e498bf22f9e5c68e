"""w2v: word2vec (skip-gram and CBOW) trained with PyTorch."""

__version__ = "0.1.0"
