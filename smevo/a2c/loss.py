"""The episodic A2C loss of Backpropamine (reference/plasticity.md §4), on whole batches.

For B episodes of T steps, returns R_t = r_t + gamma R_{t+1} with R = 0 after the last step
(no bootstrap), and each element's *own* value V_t as its baseline (the reference indexed
element 0's value for every element, a quirk not copied):

    policy        = 1/B sum_b sum_t -log pi(a_t) (R_t - V_t).detach()
    value         = 1/B sum_b sum_t (R_t - V_t)^2
    concentration = 1/B sum_b sum_t sum_a pi_t(a)^2
    loss          = (policy + value_weight * value + concentration_weight * concentration) / T

Steps after an episode's end (`mask` False) count for nothing. Computed on stacked `[T, B]`
tensors in a few vector operations rather than step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["A2CLoss", "a2c_loss", "discounted_returns"]


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """R_t = r_t + gamma R_{t+1}, R_T = 0, for rewards `[T, B]`, as one matrix product:
    R = D r with D[t, s] = gamma^(s - t) for s >= t (computed in float64)."""
    steps = rewards.shape[0]
    index = torch.arange(steps, dtype=torch.float64)
    lag = index[None, :] - index[:, None]
    discount = torch.where(lag >= 0, torch.tensor(gamma, dtype=torch.float64) ** lag.clamp(min=0),
                           torch.zeros((), dtype=torch.float64))
    return (discount @ rewards.to(torch.float64)).to(rewards.dtype)


@dataclass
class A2CLoss:
    """The loss to minimise and its terms as logged (floats: batch means of per-episode
    sums, before the division by T), with the mean per-step entropy of the policy."""

    loss: torch.Tensor
    policy: float
    value: float
    concentration: float
    entropy: float


def a2c_loss(
    logits: torch.Tensor,
    values: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float,
    value_weight: float,
    concentration_weight: float,
) -> A2CLoss:
    """The loss of one batch: `logits` `[T, B, A]`, `values` `[T, B]`, `actions` `[T, B]`
    (long), `rewards` `[T, B]`, `mask` `[T, B]` (bool: the step belongs to its episode)."""
    steps, batch = values.shape
    live = mask.to(values.dtype)
    returns = discounted_returns(rewards * live, gamma)
    log_probs = torch.log_softmax(logits, dim=-1)
    probs = log_probs.exp()
    taken = log_probs.gather(-1, actions[..., None]).squeeze(-1)
    error = (returns - values) * live
    policy = -(taken * error.detach()).sum() / batch
    value = error.square().sum() / batch
    concentration = (probs.square().sum(-1) * live).sum() / batch
    loss = (policy + value_weight * value + concentration_weight * concentration) / steps
    with torch.no_grad():
        entropy = -((probs * log_probs).sum(-1) * live).sum() / live.sum()
    return A2CLoss(loss, float(policy.detach()), float(value.detach()),
                   float(concentration.detach()), float(entropy))
