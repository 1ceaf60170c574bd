"""Out-of-distribution evaluation: every model's guard measured on inputs it must not answer
(``python -m train.ood``; the training commands run it for their own task)."""
