"""Melanoma vs benign in dermoscopy images, held up on two sources (``python -m train.skin``).

``data`` loads HAM10000 and ISIC 2017 as the function sees them, ``candidates`` builds and rates
the frozen, last-stage-tuned, two-backbone and all-layers candidates (mean per-source validation
AUC), ``evaluate`` sets the operating points and measures the artifact per source, ``card`` writes
plots and the card, ``experiments`` records runs that did not ship, ``tuning`` declares the
whole-backbone run of ``train.finetune``; ``__main__`` runs them in order. Shipped configuration
and facts: ``release.yaml``; runs the card cites: ``measurements.yaml``.
"""
