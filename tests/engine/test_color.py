import torch

from nst_engine.color import match_color_statistics, preserve_colors, rgb_to_yuv
from tests.conftest import make_image
from nst_engine.images import to_tensor


def test_colour_preservation_keeps_the_content_chroma() -> None:
    content = to_tensor(make_image(32, 32, seed=1)) * 0.3 + 0.35  # inside the RGB gamut after merging
    stylized = to_tensor(make_image(32, 32, seed=4, kind="style")) * 0.3 + 0.35
    merged = preserve_colors(stylized, content)
    merged_yuv, content_yuv, styled_yuv = rgb_to_yuv(merged), rgb_to_yuv(content), rgb_to_yuv(stylized)
    assert torch.allclose(merged_yuv[:, 1:], content_yuv[:, 1:], atol=2e-3)  # chroma from the content
    assert torch.allclose(merged_yuv[:, :1], styled_yuv[:, :1], atol=2e-3)  # luminance from the style


def test_histogram_matching_moves_colour_statistics_toward_the_target() -> None:
    source = to_tensor(make_image(40, 40, seed=2, kind="style"))
    target = to_tensor(make_image(40, 40, seed=1)) * torch.tensor([1.0, 0.5, 0.2]).view(1, 3, 1, 1)
    matched = match_color_statistics(source, target)

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = x.flatten(2)[0]
        return flat.mean(1), torch.cov(flat)

    (mu_s, cov_s), (mu_t, cov_t), (mu_m, cov_m) = stats(source), stats(target), stats(matched)
    assert (mu_m - mu_t).norm() < 0.2 * (mu_s - mu_t).norm()
    assert (cov_m - cov_t).norm() < 0.3 * (cov_s - cov_t).norm()
