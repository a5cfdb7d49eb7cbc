"""Episodes per second of smevo's episodic A2C against a plain PyTorch loop, per network.

The plain loop is written the way Backpropamine's `simplemaze/maze.py` is (this script's own
code, not the reference's): one Python loop over the batch per step to build the inputs and
to move each agent, `torch.distributions.Categorical` sampling, the loss accumulated step by
step (squared probabilities as they come, then returns, baseline and value loss in a
backward loop over the steps), the whole loss divided by the episode length, clipped Adam.
It uses each element's own value as baseline (the reference's element-0 quirk is not
copied, so both loops compute the same loss). Its networks are written as the reference
writes them (`ReferenceNet`: `bmm` with `w + alpha * hebb`, `clamp` for the traces), with
exactly as many parameters as smevo's (checked); it is also timed driving smevo's own policy
module, which isolates the loop from the network. All loops run in one process and thread
setting, alternately, so that a busy machine slows each alike.

    python scripts/bench_a2c.py                      # rnn, plastic, neuromod at ~22.5k, size 11
    python scripts/bench_a2c.py --updates 3 --nets neuromod,retroactive

Prints one line per network: episodes/s of smevo, of the plain loop with the reference-style
net and with smevo's net, the ratios, and smevo's seconds per 1,000 episodes (the cost of a
long run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from smevo.a2c import A2CConfig, Learner
from smevo.a2c.settings import A2CSettings
from smevo.config import apply_overrides
from smevo_envs.grid_maze import maze_walls

NETS = {
    "rnn": ["policy.name=rnn", "policy.options={hidden: 139, layers: 1}"],
    "plastic": ["policy.name=plastic", "policy.options={hidden: 101}"],
    "neuromod": ["policy.name=neuromod", "policy.options={hidden: 100}"],
    "retroactive": ["policy.name=neuromod",
                    "policy.options={hidden: 100, modulation: retroactive, fanout: false}"],
}


class ReferenceNet(torch.nn.Module):
    """A recurrent policy as the reference code writes it (row vectors, `bmm` with the
    per-element weights `w + alpha * trace`), returning (logits, value, state):

    - rnn (`maze/batch.py --type rnn`): tanh(i2h(x) + h2h(h));
    - plastic (DP): hebb <- (1 - eta) hebb + eta * outer(h_prev, h), eta a learned scalar;
    - neuromod (`simplemaze`): hebb <- clamp(hebb + fanout(tanh(h2mod(h))) * outer, -2, 2);
    - retroactive (`--type modul`): PW <- clamp(PW + tanh(h2DA(h)) * E, -1, 1), then
      E <- (1 - eta) E + eta * outer(h_prev, h).
    """

    def __init__(self, kind: str, hidden: int) -> None:
        super().__init__()
        nn, self.kind, self.hidden = torch.nn, kind, hidden
        self.i2h = nn.Linear(17, hidden)
        if kind == "rnn":
            self.h2h = nn.Linear(hidden, hidden)
        else:
            self.w = nn.Parameter(0.001 * torch.rand(hidden, hidden))
            self.alpha = nn.Parameter(0.001 * torch.rand(hidden, hidden))
        if kind in ("plastic", "retroactive"):
            self.eta = nn.Parameter(torch.full((1,), 0.01))
        if kind in ("neuromod", "retroactive"):
            self.h2mod = nn.Linear(hidden, 1)
        if kind == "neuromod":
            self.modfanout = nn.Linear(1, hidden)
        self.h2o = nn.Linear(hidden, 4)
        self.h2v = nn.Linear(hidden, 1)

    def initial_state(self, batch: int) -> list[torch.Tensor]:
        traces = {"rnn": 0, "plastic": 1, "neuromod": 1, "retroactive": 2}[self.kind]
        return [torch.zeros(batch, self.hidden)] + [
            torch.zeros(batch, self.hidden, self.hidden) for _ in range(traces)]

    def forward(self, x: torch.Tensor, state: list[torch.Tensor]
                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        h = state[0]
        if self.kind == "rnn":
            hactiv = torch.tanh(self.i2h(x) + self.h2h(h))
            return self.h2o(hactiv), self.h2v(hactiv)[:, 0], [hactiv]
        plastic = state[-1]
        recurrent = torch.bmm(h.unsqueeze(1), self.w + torch.mul(self.alpha, plastic))
        hactiv = torch.tanh(self.i2h(x) + recurrent.squeeze(1))
        deltahebb = torch.bmm(h.unsqueeze(2), hactiv.unsqueeze(1))
        if self.kind == "plastic":
            plastic = (1 - self.eta) * plastic + self.eta * deltahebb
            new_state = [hactiv, plastic]
        elif self.kind == "neuromod":
            myeta = self.modfanout(torch.tanh(self.h2mod(hactiv)).unsqueeze(2))
            new_state = [hactiv, torch.clamp(plastic + myeta * deltahebb, -2.0, 2.0)]
        else:
            da = torch.tanh(self.h2mod(hactiv)).unsqueeze(2)
            trace = state[1]
            plastic = torch.clamp(plastic + da * trace, -1.0, 1.0)
            trace = (1 - self.eta) * trace + self.eta * deltahebb
            new_state = [hactiv, trace, plastic]
        return self.h2o(hactiv), self.h2v(hactiv)[:, 0], new_state


class SmevoNet(torch.nn.Module):
    """smevo's policy module with the plain loop's calling convention, stepped as A2C steps
    it (by its `bptt_forward` where it has one, as `smevo.a2c.play` does)."""

    def __init__(self, policy: torch.nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def initial_state(self, batch: int) -> object:
        return self.policy.initial_state(batch)

    def forward(self, x: torch.Tensor, state: object) -> tuple[torch.Tensor, torch.Tensor, object]:
        logits, state = getattr(self.policy, "bptt_forward", self.policy)(x, state)
        return logits, self.policy.value(self.policy.features(state)), state


class PlainMazeLoop:
    """One A2C update at a time, simplemaze-style, on `net` (see the module docstring)."""

    def __init__(self, net: torch.nn.Module, settings: A2CSettings, size: int,
                 seed: int) -> None:
        self.net, self.settings = net, settings
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=settings.lr,
                                          eps=settings.adam_eps)
        self.lab = maze_walls(size).astype(np.int64)
        self.size, self.eplen, self.batch = size, 200, settings.batch
        self.rng = np.random.RandomState(seed)

    def _free_cell(self) -> tuple[int, int]:
        while True:
            r, c = self.rng.randint(1, self.size - 1), self.rng.randint(1, self.size - 1)
            if self.lab[r, c] == 0:
                return r, c

    def update(self) -> None:
        bs, eplen, centre = self.batch, self.eplen, self.size // 2
        posr, posc = np.full(bs, centre), np.full(bs, centre)
        rposr, rposc = np.zeros(bs, dtype=np.int64), np.zeros(bs, dtype=np.int64)
        for nb in range(bs):
            rposr[nb], rposc[nb] = centre, centre
            while (rposr[nb], rposc[nb]) == (centre, centre):
                rposr[nb], rposc[nb] = self._free_cell()
        state = self.net.initial_state(bs)
        reward = np.zeros(bs)
        prev_action = np.full(bs, -1)
        loss = torch.zeros(())
        logprobs, values, rewards = [], [], []
        for numstep in range(eplen):
            inputs = np.zeros((bs, 17), dtype=np.float32)
            for nb in range(bs):
                inputs[nb, 0:9] = self.lab[posr[nb] - 1:posr[nb] + 2,
                                           posc[nb] - 1:posc[nb] + 2].flatten()
                inputs[nb, 10] = 1.0
                inputs[nb, 11] = numstep / eplen
                inputs[nb, 12] = reward[nb]
                if prev_action[nb] >= 0:
                    inputs[nb, 13 + prev_action[nb]] = 1.0
            logits, value, state = self.net(torch.from_numpy(inputs), state)
            values.append(value)
            y = torch.softmax(logits, dim=1)
            distrib = torch.distributions.Categorical(y)
            actions = distrib.sample()
            logprobs.append(distrib.log_prob(actions))
            chosen = actions.numpy()
            reward = np.zeros(bs)
            for nb in range(bs):
                dr, dc = ((-1, 0), (1, 0), (0, -1), (0, 1))[chosen[nb]]
                tr, tc = posr[nb] + dr, posc[nb] + dc
                if self.lab[tr, tc] == 0:
                    posr[nb], posc[nb] = tr, tc
                if (posr[nb], posc[nb]) == (rposr[nb], rposc[nb]):
                    reward[nb] += 10.0
                    while (posr[nb], posc[nb]) == (rposr[nb], rposc[nb]):
                        posr[nb], posc[nb] = self._free_cell()
            prev_action = chosen
            rewards.append(reward)
            loss = loss + self.settings.concentration_weight * y.pow(2).sum() / bs
        big_r = torch.zeros(bs)
        lossv = torch.zeros(())
        for numstepb in reversed(range(eplen)):
            big_r = self.settings.gamma * big_r + torch.from_numpy(rewards[numstepb]).float()
            ctr_r = big_r - values[numstepb]
            lossv = lossv + ctr_r.pow(2).sum() / bs
            loss = loss - (logprobs[numstepb] * ctr_r.detach()).sum() / bs
        loss = (loss + self.settings.value_weight * lossv) / eplen
        self.optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), self.settings.grad_clip)
        self.optimizer.step()


def bench(net: str, updates: int, size: int, seed: int) -> dict[str, float]:
    """Episodes per second of each loop (median over `updates`, the loops alternating)."""
    config = apply_overrides(A2CConfig(), [*NETS[net], f"env.kwargs={{size: {size}}}",
                                           "a2c.burn_in=0", f"seed={seed}"])
    learner = Learner(config)
    torch.manual_seed(seed)
    reference = ReferenceNet(net, config.policy.options["hidden"])
    sizes = [sum(p.numel() for p in module.parameters()) for module in (learner.net, reference)]
    if sizes[0] != sizes[1]:
        raise SystemExit(f"{net}: smevo's net has {sizes[0]} parameters, the reference-style "
                         f"one {sizes[1]}")
    loops = {
        "smevo": learner.update,
        "plain": PlainMazeLoop(reference, config.a2c, size, seed).update,
        "plain_smevo_net": PlainMazeLoop(SmevoNet(Learner(config).net), config.a2c, size,
                                         seed).update,
    }
    times: dict[str, list[float]] = {name: [] for name in loops}
    for step in loops.values():  # warm-up
        step()
    for _ in range(updates):
        for name, step in loops.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: config.a2c.batch / statistics.median(seconds)
            for name, seconds in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nets", default="rnn,plastic,neuromod",
                        help=f"comma-separated, of {', '.join(NETS)}")
    parser.add_argument("--updates", type=int, default=5, help="timed updates per loop")
    parser.add_argument("--size", type=int, default=11, help="maze size (default 11)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = sys.stdout
    out.write(f"batch 30, 200 steps, maze size {args.size}, {args.threads} thread(s), median "
              f"of {args.updates} updates each\n")
    for net in args.nets.split(","):
        rates = bench(net, args.updates, args.size, args.seed)
        smevo, plain, mixed = rates["smevo"], rates["plain"], rates["plain_smevo_net"]
        out.write(f"{net:12s} smevo {smevo:6.1f} ep/s | plain {plain:6.1f} ep/s "
                  f"(ratio {smevo / plain:.2f}x) | plain loop on smevo's net {mixed:6.1f} ep/s "
                  f"(ratio {smevo / mixed:.2f}x) | smevo {1000 / smevo:.0f} s per 1,000 "
                  "episodes\n")
        out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
