"""A small CNN trained with Adam + CrossEntropyLoss (synthetic 8x8 "images", 3 classes).

The PyTorch original::

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 8, kernel_size=3, padding=1)
            self.fc = nn.Linear(8 * 4 * 4, 3)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x)), 2)
            return self.fc(x.flatten(1))

    model = CNN()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        for images, labels in loader:
            optimizer.zero_grad()
            loss = criterion(model(images), labels)
            loss.backward()
            optimizer.step()
"""

import jax
import jax.numpy as jnp
from flax import nnx

import jaxopt_losses.compat as torch


class CNN(nnx.Module):
    def __init__(self, rngs):
        self.conv = nnx.Conv(1, 8, kernel_size=(3, 3), padding=1, rngs=rngs)  # NHWC in flax
        self.fc = nnx.Linear(8 * 4 * 4, 3, rngs=rngs)

    def __call__(self, x):
        x = nnx.max_pool(nnx.relu(self.conv(x)), window_shape=(2, 2), strides=(2, 2))
        return self.fc(x.reshape(x.shape[0], -1))


def make_data(n=256):
    labels = jax.random.randint(jax.random.key(0), (n,), 0, 3)
    noise = 0.3 * jax.random.normal(jax.random.key(1), (n, 8, 8, 1))
    rows = jnp.arange(8)[None, :, None, None]
    images = (rows // 3 == labels[:, None, None, None]).astype(jnp.float32) + noise  # class = bright band
    return images, labels


def main():
    images, labels = make_data()
    model = CNN(nnx.Rngs(0))
    criterion = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model, lr=1e-2)

    @nnx.jit
    def loss_and_grads(model, x, y):
        return nnx.value_and_grad(lambda m: criterion(m(x), y))(model)

    for epoch in range(3):
        for i in range(0, len(labels), 64):
            optimizer.zero_grad()
            loss, grads = loss_and_grads(model, images[i : i + 64], labels[i : i + 64])
            optimizer.step(grads)
        accuracy = float(jnp.mean(jnp.argmax(model(images), -1) == labels))
        print(f"epoch {epoch} loss {float(loss):.4f} accuracy {accuracy:.2f}")
    assert accuracy > 0.8


if __name__ == "__main__":
    main()
