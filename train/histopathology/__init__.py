"""Invasive ductal carcinoma in 50x50 H&E patches, and region heatmaps (``python -m train.histopathology``).

``data`` loads the patches by patient-held-out split, ``cancernet`` is the seed's network and its
stain-jittered variants, ``transfer_candidate`` the MobileNetV2 tuned on the patches, ``evaluate``
the per-patient spread and the variants' figures, ``card`` the plots and the card, ``tuning`` the
whole-backbone run of ``train.finetune``, ``transfer_experiment`` the frozen / last-stage ImageNet
measurements (``make experiment-histopathology``); ``__main__`` runs them in order. Shipped
configuration and facts: ``release.yaml``; runs the card cites: ``measurements.yaml``.
"""
