"""The numbers behind Figures 1 and 2, against independent computations."""
import torch
import torch.nn.functional as F

from introspect.analysis.figures import class_similarity, mean_class_distance
from introspect.explain import explain
from introspect.models import build_model


def test_class_similarity_is_the_cosine_of_every_pair_of_class_maps(seeded):
    maps = torch.rand(3, 4, 5, 5, generator=seeded)
    sims = class_similarity(maps)
    assert sims.shape == (3, 4, 4)
    for b in range(3):
        for i in range(4):
            for j in range(4):
                expected = F.cosine_similarity(maps[b, i].flatten(), maps[b, j].flatten(), dim=0)
                torch.testing.assert_close(sims[b, i, j], expected)


def test_mean_class_distance_averages_over_samples_and_batches(seeded):
    torch.manual_seed(0)
    model = build_model("mlp1024", 10, (1, 8, 8)).eval()
    x = torch.randn(7, 1, 8, 8, generator=seeded)
    distance = mean_class_distance(model, x, "grad_input", batch_size=3)  # batches of 3, 3 and 1
    expected = (1 - class_similarity(explain(model, x, "grad_input"))).mean(dim=0)
    torch.testing.assert_close(distance, expected)
    torch.testing.assert_close(distance, distance.T)
    torch.testing.assert_close(distance.diagonal(), torch.zeros(10), atol=1e-5, rtol=0)
