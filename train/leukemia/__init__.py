"""ALL vs AML from the Golub expression profile (``python -m train.leukemia``).

Golub-style preprocessing → standardisation → PCA → a small dense network, folded into one Keras
graph that takes raw Affymetrix intensities, converted to TFLite and served. ``data`` reads the
Golub files, ``model`` builds and fits the graph, ``card`` writes plots and the model card, and
``__main__`` runs them in order. Shipped configuration and facts: ``release.yaml``.
"""
