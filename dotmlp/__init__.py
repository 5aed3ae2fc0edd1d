"""dotmlp: can an MLP learn a dot product, and how big must it be?"""

__version__ = "0.1.0"
