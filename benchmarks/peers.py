"""The tools FlashRegressor is measured against, each trained the way its users write it."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int = 1) -> nn.Module:
    layers: list[nn.Module] = []
    width = n_in
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class MLPModule(nn.Module):
    """An MLP module class with keyword arguments, as skorch's ``module__`` routing expects."""

    def __init__(self, n_in: int = 10, hidden: tuple[int, ...] = (64,), n_out: int = 1) -> None:
        super().__init__()
        self.net = mlp(n_in, tuple(hidden), n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hand_loop(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    epochs: int,
    batch_size: int,
    lr: float = 1e-3,
    seed: int = 0,
    permute_once: bool = False,
    device: str = "cpu",
) -> nn.Module:
    """The loop people write by hand, Adam on in-memory tensors: each batch indexed by a
    shuffled slice of indices, or (``permute_once``) the whole data permuted once per
    epoch and split into batches. On a GPU, the data is moved there once."""
    generator = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).reshape(len(y), -1).to(device)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=generator).to(device)
        if permute_once:
            batches = zip(xt[order].split(batch_size), yt[order].split(batch_size), strict=True)
        else:
            batches = ((xt[index], yt[index]) for index in order.split(batch_size))
        for xb, yb in batches:
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(xb), yb)
            loss.backward()
            optimizer.step()
    return model


class _PlainModule(pl.LightningModule):
    def __init__(self, model: nn.Module, lr: float) -> None:
        super().__init__()
        self.model, self.lr = model, lr

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def plain_lightning(
    model: nn.Module, X: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, lr: float = 1e-3
) -> nn.Module:
    """A LightningModule and a Trainer over a TensorDataset loader, as the docs show."""
    data = TensorDataset(torch.from_numpy(X), torch.from_numpy(y).reshape(len(y), -1))
    loader = DataLoader(data, batch_size=batch_size, shuffle=True)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        trainer.fit(_PlainModule(model, lr), loader)
    return model


def skorch_regressor(
    module: type[nn.Module], epochs: int, batch_size: int, lr: float = 1e-3, **module_kwargs
):
    """skorch's NeuralNetRegressor, set up to do the same work (no internal split, quiet)."""
    from skorch import NeuralNetRegressor

    return NeuralNetRegressor(
        module,
        max_epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=torch.optim.Adam,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        **{f"module__{k}": v for k, v in module_kwargs.items()},
    )


def predict(model: nn.Module, X: np.ndarray) -> np.ndarray:
    device = next(model.parameters()).device
    with torch.no_grad():
        return model(torch.from_numpy(X).to(device)).cpu().numpy().reshape(-1)
