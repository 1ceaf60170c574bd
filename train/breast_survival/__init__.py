"""Breast-cancer survival groups from METABRIC gene expression (``python -m train.breast_survival``).

``data`` reads METABRIC and splits it, ``model`` holds the candidate families and the serving graph,
``evaluate`` judges groups (Harrell's C, log-rank), ``survival_stats`` the statistics underneath,
``card`` the plots and the model card; ``__main__`` runs them in order. Shipped configuration and
facts: ``release.yaml``.
"""
