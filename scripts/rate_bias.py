"""Where a model's population rate goes wrong: the autoencoder, the diffusion, or the counts.

For the ``--split`` trials of the M1 recording it prints the population rate (Hz, summed over
neurons) of the real trials, of the autoencoder's reconstructions of them (``decode(encode)``),
and of the model's streamed samples on the same trials' conditions (their rates, and the counts
the observation model drew from those rates), with the per-neuron rate RMSE against the real
trials; then the samples' counts / rates ratio over the first bins of a trial; then how much
of the real pairwise correlations the samples keep: the slope of a line fitted through
(real, generated) correlation coefficients of every neuron pair (per-bin counts, all bins of
the split pooled), for the samples and for counts drawn by the observation model from the
autoencoder's reconstructions (1: the real correlations' size); then the unit whose Fano factor
(pooled bins) is furthest from the real one's, with its history weights' sum.

    python scripts/rate_bias.py runs/m1-direction-al64 m1-velocity --split test
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from ldns_sim.bundle import load_bundle
from ldns_sim.data.load import load_spike_data
from ldns_sim.evaluate_command import sample_model
from ldns_sim.nn.autoencoder import encode_stitched
from ldns_sim.pretrained import resolve_model

DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"
ENCODE_WINDOW_BINS, ENCODE_HOP_BINS = 64, 16


def per_neuron_hz(trials, bin_s: float) -> np.ndarray:
    """(n_neurons,) mean over every bin of every trial, in Hz."""
    return np.concatenate([np.asarray(t, float) for t in trials]).mean(0) / bin_s


def pair_correlations(trials) -> np.ndarray:
    """Correlation coefficients of every neuron pair, per-bin counts of all trials pooled."""
    counts = np.concatenate([np.asarray(t, float) for t in trials])  # (n_bins, N)
    return np.corrcoef(counts.T)[np.triu_indices(counts.shape[1], 1)]


def fano_factors(trials) -> np.ndarray:
    """(n_neurons,) variance / mean of the per-bin counts, all trials pooled."""
    counts = np.concatenate([np.asarray(t, float) for t in trials])  # (n_bins, N)
    return counts.var(0) / np.maximum(counts.mean(0), 1e-12)


def correlation_slope(generated, real_pairs: np.ndarray) -> float:
    """Least-squares slope of generated against real pair correlations (NaN pairs dropped)."""
    gen_pairs = pair_correlations(generated)
    keep = np.isfinite(gen_pairs) & np.isfinite(real_pairs)
    return float(np.polyfit(real_pairs[keep], gen_pairs[keep], 1)[0])


@torch.no_grad()
def reconstructed_counts(history, rates: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Counts drawn by an observation model from (n_bins, n_neurons) rates."""
    generator = torch.Generator().manual_seed(seed)
    return [history.sample(torch.as_tensor(r.T[None]), generator)[0].T.numpy() for r in rates]


@torch.no_grad()
def reconstructed_rates(ae, trials) -> list[np.ndarray]:
    """An autoencoder's rates (counts per bin) of each real trial, (n_bins, n_neurons)."""
    out = []
    for counts in trials:
        x = torch.as_tensor(np.asarray(counts, np.float32).T)  # (N, L)
        z = encode_stitched(ae, x, ENCODE_WINDOW_BINS, ENCODE_HOP_BINS)  # (Z, L)
        out.append(ae.decode(z[None])[0].T.numpy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model bundles or shipped names")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"])
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-bins", type=int, default=8)
    args = parser.parse_args()
    real = load_spike_data(args.data).select(args.split)
    real_hz = per_neuron_hz(real.counts, real.bin_s)
    print(f"{args.split}: {real.n_trials} real trials, population rate {real_hz.sum():.1f} Hz")
    real_pairs, real_fano = pair_correlations(real.counts), fano_factors(real.counts)
    for model in args.models:
        bundle = load_bundle(resolve_model(model))
        ae_rates = reconstructed_rates(bundle.ae, real.counts)
        ae_hz = per_neuron_hz(ae_rates, real.bin_s)
        sets, _ = sample_model(model, real, 4, np.random.SeedSequence(args.seed))
        samples = sets["LDNS (streamed)"]
        count_hz = per_neuron_hz(samples.counts, real.bin_s)
        rate_hz = per_neuron_hz(samples.true_rates, real.bin_s)

        def rmse(a):
            return float(np.sqrt(((a - real_hz) ** 2).mean()))

        print(f"{model}: population rate (Hz) autoencoder {ae_hz.sum():.1f}, samples' rates "
              f"{rate_hz.sum():.1f}, samples' counts {count_hz.sum():.1f}; per-neuron RMSE vs "
              f"real {rmse(ae_hz):.2f} / {rmse(rate_hz):.2f} / {rmse(count_hz):.2f} Hz")
        n = min(args.first_bins, min(len(c) for c in samples.counts))
        counts = np.mean([np.asarray(c[:n], float).sum(1) for c in samples.counts], axis=0)
        rates = np.mean([np.asarray(r[:n], float).sum(1) for r in samples.true_rates], axis=0)
        print(f"   samples' counts / rates, bins 1-{n}: {np.round(counts / rates, 2).tolist()}")
        ae_counts = reconstructed_counts(bundle.history, ae_rates, args.seed)
        print(f"   pairwise correlations, slope against the real ones: samples "
              f"{correlation_slope(samples.counts, real_pairs):.2f}, observation model on the "
              f"autoencoder's reconstructions {correlation_slope(ae_counts, real_pairs):.2f}")
        gen_fano = fano_factors(samples.counts)
        unit = int(np.argmax(np.abs(gen_fano - real_fano)))
        weights = bundle.history.weights[unit].sum().item()
        print(f"   furthest Fano factor: unit {unit} ({real_hz[unit]:.2f} Hz real, history "
              f"weights summing to {weights:.2f}): {gen_fano[unit]:.2f} against "
              f"{real_fano[unit]:.2f} real")


if __name__ == "__main__":
    main()
