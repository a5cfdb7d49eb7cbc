"""What a parent saw during its evaluation: the inputs on which safe mutation measures change.

Safe mutation needs no extra environment interaction: the observations (for recurrent
policies, the observation sequences) recorded while the parent was evaluated are kept with
it, subsampled to a bound, and its children's divergence is measured on them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Experiences:
    """A batch of states `[N, *obs]`, or of padded sequences `[N, T, *obs]` with a mask `[N, T]`.

    For sequences, every valid step's output counts as one sample of the divergence and the
    sensitivities; padding is always at the end of a sequence.
    """

    observations: torch.Tensor
    mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.observations.shape[0] == 0:
            raise ValueError("experiences are empty: a safe mutation needs at least one state")
        if self.mask is not None:
            if self.mask.shape != self.observations.shape[:2] or self.mask.dtype != torch.bool:
                raise ValueError(
                    f"mask must be bool with shape {tuple(self.observations.shape[:2])}, "
                    f"got {self.mask.dtype} {tuple(self.mask.shape)}"
                )
            if not bool(self.mask[:, 0].all()):
                raise ValueError("every sequence needs at least one step")

    @classmethod
    def from_states(cls, states: torch.Tensor | Sequence) -> Experiences:
        """Experiences from a stack of observations `[N, *obs]` (feedforward policies)."""
        return cls(torch.as_tensor(states, dtype=torch.float32))

    @classmethod
    def from_sequences(cls, sequences: Sequence[torch.Tensor]) -> Experiences:
        """Experiences from observation sequences of any lengths `[T_i, *obs]` (recurrent
        policies); they are padded at the end and masked."""
        if len(sequences) == 0:
            raise ValueError("experiences are empty: a safe mutation needs at least one sequence")
        tensors = [torch.as_tensor(s, dtype=torch.float32) for s in sequences]
        if any(t.shape[0] == 0 for t in tensors):
            raise ValueError("every sequence needs at least one step")
        padded = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)
        lengths = torch.tensor([t.shape[0] for t in tensors])
        mask = torch.arange(padded.shape[1])[None, :] < lengths[:, None]
        return cls(padded, mask)

    @property
    def is_sequential(self) -> bool:
        return self.mask is not None

    def __len__(self) -> int:
        return self.observations.shape[0]

    @property
    def num_samples(self) -> int:
        """How many outputs the divergence averages over: states, or valid sequence steps."""
        return len(self) if self.mask is None else int(self.mask.sum())

    def sample_weights(self) -> torch.Tensor:
        """1 for every valid output position (`[N]` or `[N, T]`), 0 for padding."""
        if self.mask is None:
            return torch.ones(len(self), device=self.observations.device)
        return self.mask.to(self.observations.dtype)

    def subsample(self, size: int, generator: torch.Generator | None = None) -> Experiences:
        """At most `size` states or sequences, drawn without replacement."""
        if len(self) <= size:
            return self
        index = torch.randperm(len(self), generator=generator)[:size].sort().values
        mask = None if self.mask is None else self.mask[index]
        observations = self.observations[index]
        if mask is not None:
            longest = int(mask.sum(dim=1).max())
            observations, mask = observations[:, :longest], mask[:, :longest]
        return Experiences(observations, mask)

    def to(self, device: torch.device | str) -> Experiences:
        mask = None if self.mask is None else self.mask.to(device)
        return Experiences(self.observations.to(device), mask)
