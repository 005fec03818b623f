"""e2KD (explanation-enhanced knowledge distillation) in your own training loop.

A teacher is trained first (here: 3 epochs of cross-entropy). The student then learns from the teacher's
softened outputs (KD) and, for e2KD, also matches the teacher's Grad-CAM of the teacher's top-1 class:
``1 - cos`` between the two maps, differentiated through the student's map (``create_graph=True``).
Both networks come from ``introspect.models`` (their ``forward_features`` returns the logits and the
explanation layer's output); for your own networks see examples/grad_cam_own_model.py.

Run:  python examples/e2kd_own_loop.py      (scikit-learn's 8x8 digits, about 15 s on one CPU core)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from introspect.explain import grad_cam_of_class
from introspect.methods.distill import softened_kl
from introspect.methods.e2kd import explanation_cosine_loss, teacher_grad_cam
from introspect.models import build_model


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """scikit-learn's 1,797 handwritten digits as (N, 1, 8, 8) images: 1,400 to train, the rest to test."""
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def main(teacher_epochs: int = 3, student_epochs: int = 2, temperature: float = 4.0, gamma: float = 1.0
         ) -> tuple[float, float]:
    torch.manual_seed(0)
    x_train, y_train, x_test, y_test = digits()
    teacher = build_model("resnet14", num_classes=10, input_shape=(1, 8, 8))
    student = build_model("resnet8", num_classes=10, input_shape=(1, 8, 8))

    optimiser = torch.optim.SGD(teacher.parameters(), lr=0.05, momentum=0.9)
    for _ in range(teacher_epochs):
        teacher.train()
        for batch in torch.randperm(len(x_train)).split(64):
            loss = F.cross_entropy(teacher(x_train[batch]), y_train[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    teacher.eval()                                           # frozen from here on
    print(f"teacher test accuracy {accuracy(teacher, x_test, y_test):.1%}")

    optimiser = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(student_epochs):
        student.train()
        for batch in torch.randperm(len(x_train)).split(64):
            x = x_train[batch]
            out = student.forward_features(x)                # logits, stages, explanation features
            with torch.no_grad():
                t_out = teacher.forward_features(x)
            classes, teacher_maps = teacher_grad_cam(teacher, t_out, x)   # its top-1 classes, their maps (detached)
            student_maps = grad_cam_of_class(student, out, classes, create_graph=True, x=x)  # trains through the map
            loss = (softened_kl(out.logits, t_out.logits, temperature)
                    + gamma * explanation_cosine_loss(student_maps, teacher_maps))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        print(f"student epoch {epoch + 1}: test accuracy {accuracy(student, x_test, y_test):.1%}")
    return accuracy(teacher, x_test, y_test), accuracy(student, x_test, y_test)


if __name__ == "__main__":
    main()
