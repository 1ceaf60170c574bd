"""Brain CT/MRI slices: tumour vs healthy (recall first) and the MRI tumour type (``python -m train.brain``).

``data`` loads the slices as the function sees them, ``heads`` fits the linear heads on backbone
features, ``evaluate`` sets per-modality thresholds and measures the artifact (robustness to size
and colour, where the CAM evidence sits), ``card`` writes plots and the card, ``tuning`` declares the
whole-backbone run of ``train.finetune``, ``dicom_input`` measures the DICOM path; ``__main__``
runs them in order. Shipped configuration and facts: ``release.yaml``.
"""
