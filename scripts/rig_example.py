"""A rig's own decoder in the loop with ldns-sim: spikes in, decoded velocity out.

The worked example of docs/rig-example.md. Plain numpy + pyzmq (+ pylsl, pynwb if used);
nothing from ldns_sim, because this is the rig's side of the wire::

    # 1. calibrate: record an open-loop session driven by scripted reaches, fit a linear map
    ldns-sim stream --condition script:center-out --duration 120 --record calib.nwb
    python scripts/rig_example.py --fit calib.nwb --weights rig.npz
    # 2. close the loop: the simulator is driven by what this decoder makes of its spikes
    ldns-sim stream --condition zmq:tcp://127.0.0.1:5557 --zmq tcp://127.0.0.1:5556 &
    python scripts/rig_example.py --weights rig.npz                      # spikes over ZMQ
    python scripts/rig_example.py --weights rig.npz --lsl ldns-sim-spikes  # or over LSL
"""

import argparse
import json

import numpy as np
import zmq


def zmq_bins(endpoint, timeout_s):
    """Yield ``(counts of one bin, its end time)`` from an ldns-sim ZMQ publisher."""
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.connect(endpoint)
    sub.setsockopt(zmq.SUBSCRIBE, b"spikes")
    while sub.poll(int(timeout_s * 1000)):
        _, header, payload = sub.recv_multipart()
        h = json.loads(header)  # schema_version, seq, t_first (bin end), bin_s, dtype, shape
        counts = np.frombuffer(payload, dtype=h["dtype"]).reshape(h["shape"])
        for i, row in enumerate(counts):
            yield row, h["t_first"] + i * h["bin_s"]


def lsl_bins(name, timeout_s):
    """The same from the LSL ``SpikeCounts`` outlet called ``name``."""
    import pylsl

    # discovery on this computer only; "site" for a simulator on another lab computer
    pylsl.set_config_content("[multicast]\nResolveScope = machine\n")
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", name, 1, timeout_s)[0])
    while True:
        row, stamp = inlet.pull_sample(timeout=timeout_s)
        if stamp is None:
            return
        yield np.asarray(row), stamp


def decode_loop(bins, weights, bias, out_endpoint, max_bins):
    """velocity = counts @ W + b, one ``behaviour`` message per bin (``--condition zmq:``)."""
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(out_endpoint)
    n = 0
    for counts, t_end in bins:
        velocity = (counts @ weights + bias).astype("<f4")
        header = {"schema_version": 1, "seq": n, "shape": [1, 2], "dtype": "float32",
                  "t_first": t_end}
        pub.send_multipart([b"behaviour", json.dumps(header).encode(), velocity.tobytes()])
        n += 1
        if n == max_bins:
            break
    pub.close(linger=1000)
    return n


def fit(nwb_path, out_path, ridge=1.0):
    """Least squares with a ridge from a recorded session: its counts -> its condition."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(nwb_path, "r") as io:
        nwb = io.read()
        counts = nwb.processing["ecephys"]["binned_spike_counts"].data[:].astype(float)
        velocity = nwb.processing["behavior"]["condition"].data[:, :2].astype(float)
    x = np.column_stack([counts, np.ones(len(counts))])
    wb = np.linalg.solve(x.T @ x + ridge * np.eye(x.shape[1]), x.T @ velocity)
    np.savez(out_path, W=wb[:-1], b=wb[-1])
    r2 = 1 - np.sum((x @ wb - velocity) ** 2) / np.sum((velocity - velocity.mean(0)) ** 2)
    print(f"fitted {counts.shape[1]} neurons on {len(counts)} bins, R2 {r2:.2f}: {out_path}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help=".npz with W (n_neurons, 2) and b (2,)")
    p.add_argument("--fit", metavar="SESSION.nwb", help="fit --weights from a recording")
    p.add_argument("--spikes", default="tcp://127.0.0.1:5556", help="ldns-sim ZMQ endpoint")
    p.add_argument("--lsl", metavar="NAME", help="read the LSL SpikeCounts stream instead")
    p.add_argument("--velocity-out", default="tcp://127.0.0.1:5557",
                   help="bind here; ldns-sim stream --condition zmq:ENDPOINT reads it")
    p.add_argument("--max-bins", type=int, help="stop after this many bins")
    p.add_argument("--timeout", type=float, default=10.0, help="stop after S s of silence")
    args = p.parse_args()
    if args.fit:
        return fit(args.fit, args.weights)
    params = np.load(args.weights)
    bins = (lsl_bins(args.lsl, args.timeout) if args.lsl
            else zmq_bins(args.spikes, args.timeout))
    n = decode_loop(bins, params["W"], params["b"], args.velocity_out, args.max_bins)
    print(f"decoded {n} bins")


if __name__ == "__main__":
    main()
