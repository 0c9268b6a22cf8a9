import torch

from nst_engine.losses import content_loss, gram_matrix, style_loss, total_variation


def test_gram_matches_a_hand_computed_case() -> None:
    # Two channels over a 1x2 image: F = [[1, 2], [3, 4]]; F F^T = [[5, 11], [11, 25]]; / (C*H*W = 4).
    features = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.equal(gram_matrix(features), expected)


def test_gram_is_batched_per_image() -> None:
    a, b = torch.rand(1, 4, 5, 6), torch.rand(1, 4, 5, 6)
    both = gram_matrix(torch.cat([a, b]))
    assert torch.allclose(both[0], gram_matrix(a)[0]) and torch.allclose(both[1], gram_matrix(b)[0])


def test_losses_are_per_image_and_weighted() -> None:
    features = {"a": torch.zeros(2, 3, 4, 4), "b": torch.ones(2, 3, 2, 2)}
    targets = {"a": torch.ones(2, 3, 4, 4)}
    assert torch.equal(content_loss(features, targets), torch.tensor([1.0, 1.0]))
    grams = {"b": torch.zeros(2, 3, 3)}  # gram of ones / (3*2*2) = 4/12 = 1/3 everywhere
    loss = style_loss(features, grams, {"b": 3.0})
    assert torch.allclose(loss, torch.full((2,), 3.0 / 9))


def test_total_variation_is_zero_on_flat_images_and_positive_on_edges() -> None:
    flat = torch.full((1, 3, 8, 8), 0.5)
    edge = flat.clone()
    edge[..., 4:] = 1.0
    tv = total_variation(torch.cat([flat, edge]))
    assert tv[0] == 0 and tv[1] > 0
