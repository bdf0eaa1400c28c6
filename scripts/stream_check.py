"""Issue 3 must-shows 1-3 from outside the product: a real `ldns-sim stream` in its own process,
a behaviour producer, an LSL consumer and a ZMQ consumer each in a process of its own.

* every bin arrives at both consumers (no gap, regular stamps);
* condition-to-spikes latency: the producer pushes a velocity whose x channel carries a
  (k mod 1000) * 1e-5 offset (at most 0.01, against speeds of ~30), so every sample of a 10 s
  span has a distinct value; each emitted bin's condition (the `-condition` outlet, float32
  end to end) names the sample it used, so latency = the bin's emission (the hand-out time
  the session's NWB telemetry records) - the sample's push time, per sample (also given to
  the bin's stamp, its end: the same under scheduled emission, g earlier under immediate);
* live conditioning: a ridge decoder fitted on real M1 train trials decodes the streamed spikes;
  its R^2 against the velocity that drove them, beside its R^2 on real held-out trials.
  ``--behaviour script`` (default) drives the stream with the scripted centre-out user;
  ``--behaviour replay`` with the recorded hand velocity of the held-out test trials, laid end
  to end and looped (each 50 ms sample held for its bin), as a rig replaying a session would.

    python scripts/stream_check.py --duration 600 --json runs/stream_check.json

``--probe`` runs ``scripts/wake_probe.py`` beside the stream, one per CPU (a real-time thread
alone in a process of its own, waking every millisecond), and lists for every late chunk the
longest stall each probe saw around it: a late chunk that coincides with a probe stall was held
up by the machine (the VM or the kernel), not by the simulator.

All traffic stays on this machine (LSL ResolveScope = machine, ZMQ on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid

import numpy as np

ENV = {**os.environ, "LDNS_SIM_LSL_SCOPE": "machine"}
DATA = "../shared/data/m1_center_out_trialdata/center_out_data.mat"
RATE_HZ = 100.0
#: The probes' SCHED_FIFO priority: below the engine's (10 in the default profile), so the
#: engine preempts them; at the same priority a probe on the engine's CPU waited for the engine
#: (8,975 of its wake-ups over 2 ms late in one run) and delayed the engine in turn.
PROBE_RT_PRIORITY = 5


def replayed_test_velocity() -> tuple[np.ndarray, float]:
    """The held-out test trials' velocity laid end to end: ((n_bins, 2), bin_s)."""
    from ldns_sim.data.load import load_spike_data

    test = load_spike_data(DATA).select("test")
    return np.concatenate([np.asarray(b, dtype=float) for b in test.behaviour]), test.bin_s


def producer(name: str, duration_s: float, log_path: str, peak_speed: float,
             behaviour: str = "script") -> None:
    """Push velocity at 100 Hz (scripted user or replayed test trials); x carries
    (k mod 1000) * 1e-5 (an id)."""
    from ldns_sim.lsl_config import configure_lsl

    configure_lsl("machine")
    import pylsl

    from ldns_sim.sources.script_source import ScriptedCenterOut

    outlet = pylsl.StreamOutlet(pylsl.StreamInfo(name, "Behavior", 2, RATE_HZ, "float32",
                                                 f"{name}-src"))
    user = ScriptedCenterOut(peak_speed=peak_speed, rng=np.random.default_rng(0), start_s=0.0)
    replay, replay_bin_s = replayed_test_velocity() if behaviour == "replay" else (None, 1.0)
    t0 = pylsl.local_clock()
    log = []
    k = 0
    while (now := pylsl.local_clock()) - t0 < duration_s:
        if replay is None:
            v = user.velocity_at(now - t0).astype(np.float64)
        else:
            v = replay[int((now - t0) / replay_bin_s) % len(replay)].copy()
        v[0] += (k % 1000) * 1e-5
        outlet.push_sample(v.astype(np.float32).tolist(), now)
        log.append((k, now, float(np.float32(v[0]))))
        k += 1
        time.sleep(max(0.0, t0 + k / RATE_HZ - pylsl.local_clock()))
    np.save(log_path, np.array(log))


def lsl_consumer(prefix: str, duration_s: float, out_path: str) -> None:
    from ldns_sim.lsl_config import configure_lsl

    configure_lsl("machine")
    import pylsl

    inlets = {}
    for kind in ("spikes", "condition"):
        infos = pylsl.resolve_byprop("name", f"{prefix}-{kind}", 1, 60.0)
        inlets[kind] = pylsl.StreamInlet(infos[0], max_buflen=60)
    data = {k: ([], []) for k in inlets}
    deadline = time.monotonic() + duration_s + 30
    idle_since = None
    while time.monotonic() < deadline:
        got = 0
        for kind, inlet in inlets.items():
            chunk, stamps = inlet.pull_chunk(timeout=0.05)
            data[kind][0].extend(chunk)
            data[kind][1].extend(stamps)
            got += len(stamps)
        if got == 0:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 5 and data["spikes"][1]:
                break
        else:
            idle_since = None
    np.savez(out_path, spikes=np.array(data["spikes"][0]), spike_t=np.array(data["spikes"][1]),
             condition=np.array(data["condition"][0]), condition_t=np.array(data["condition"][1]))


def zmq_consumer(endpoint: str, duration_s: float, out_path: str) -> None:
    from ldns_sim.client import ZmqSpikeSubscriber

    sub = ZmqSpikeSubscriber(endpoint, topics=("spikes",))
    seqs, t_first, n_bins = [], [], 0
    deadline = time.monotonic() + duration_s + 60
    quiet = 0
    while time.monotonic() < deadline and quiet < 10:
        try:
            header, array = sub.recv(timeout_s=1.0)
        except TimeoutError:
            quiet += 1 if seqs else 0
            continue
        quiet = 0
        seqs.append(header["seq"])
        t_first.append(header["t_first"])
        n_bins += array.shape[0]
    dt = np.diff(t_first) if len(t_first) > 1 else np.zeros(1)
    json.dump({"n_messages": len(seqs), "n_bins": n_bins, "n_missed": sub.n_missed,
               "seq_first": seqs[0] if seqs else None, "seq_last": seqs[-1] if seqs else None,
               "t_first_dt_min_s": float(dt.min()), "t_first_dt_max_s": float(dt.max())},
              open(out_path, "w"))


def _decode_r2(spikes: np.ndarray, velocity: np.ndarray) -> dict:
    from ldns_sim.data.load import load_spike_data
    from ldns_sim.evaluation.decoding import fit_ridge, r2_score

    data = load_spike_data(DATA)
    train, test = data.select("train"), data.select("test")
    dec = fit_ridge(list(train.counts), list(train.behaviour), alpha=1.0, n_history=2,
                    smooth_bins=1.0)
    real = r2_score(list(test.behaviour), dec.predict(list(test.counts)))
    streamed = r2_score([velocity], dec.predict([spikes]))
    return {"r2_real_heldout": real, "r2_streamed": streamed, "ratio": streamed / real}


def stall_events(stalls: list[dict], period_s: float) -> list[tuple[float, float]]:
    """Probe wake-ups later than its threshold merged into stalls: (start_s, length_s).

    One stall of length S makes every wake-up due in it late, by S, S - period, ...: they are
    one event, starting at the first one's target, as long as its lateness.
    """
    events: list[tuple[float, float]] = []
    for s in stalls:
        t_s, late_s = s["t_monotonic_s"], s["late_ms"] / 1e3
        if events and t_s <= events[-1][0] + events[-1][1] + period_s:
            start_s, length_s = events[-1]
            events[-1] = (start_s, max(length_s, t_s + late_s - start_s))
        else:
            events.append((t_s, late_s))
    return events


def recorded_telemetry(work: str):
    """The recorded session's telemetry table, with ``emitted_at_s`` on the LSL clock (the
    recording keeps session time, 0 at the stream's start), and that start on the LSL clock."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(f"{work}/session.nwb", "r") as io:
        nwb = io.read()
        telemetry = nwb.processing["ldns_sim"]["telemetry"].to_dataframe()
        t0_lsl_s = json.loads(nwb.notes)["lsl_clock_at_session_start_s"]
    telemetry["emitted_at_s"] = telemetry["emitted_at"] + t0_lsl_s
    return telemetry, t0_lsl_s


def late_chunks_beside_stalls(work: str, cpus: list[int]) -> dict:
    """Late chunks of the recorded session and the machine stalls the probes saw near them
    (one probe per CPU of ``cpus``: a stall of one virtual CPU stops only what runs on it;
    the probes' stamps are on the LSL clock, as ``emitted_at_s``)."""
    telemetry, _ = recorded_telemetry(work)
    t_first, t_last = telemetry["emitted_at_s"].min(), telemetry["emitted_at_s"].max()
    late = telemetry[telemetry["late"] > 0]
    per_cpu, chunks = {}, [{"seq": int(row["seq"]),
                            "generation_ms": row["generation_latency_s"] * 1e3,
                            "emitted_at_s": row["emitted_at_s"], "probe_stall_ms": {}}
                           for _, row in late.iterrows()]
    for cpu in cpus:
        probe = json.load(open(f"{work}/wake_probe_cpu{cpu}.json"))
        events = stall_events(probe["stalls"], probe["period_ms"] / 1e3)
        during = [d for t, d in events if t_first <= t <= t_last]
        per_cpu[f"cpu{cpu}"] = {
            "lateness_ms": probe["lateness_ms"],
            "stalls_during_stream": {f"over_{x}ms": sum(d * 1e3 > x for d in during)
                                     for x in (2, 4, 6, 10)},
            "longest_stall_ms": max(during, default=0.0) * 1e3,
            "seconds_with_steal_time": sum(t_first <= e["t_monotonic_s"] <= t_last
                                           for e in probe["steal_s"])}
        for chunk in chunks:
            # a stall that can have held this chunk up began in the 100 ms before its emission
            # (its generation started at most one look-ahead before its bin's end)
            near = [d for t, d in events
                    if chunk["emitted_at_s"] - 0.1 <= t <= chunk["emitted_at_s"]]
            chunk["probe_stall_ms"][f"cpu{cpu}"] = max(near, default=0.0) * 1e3
    return {"probes": per_cpu, "late_chunks": chunks}


def emission_delay_s(work: str, stamps_s: np.ndarray, bin_s: float,
                     bins_per_chunk: int) -> np.ndarray:
    """Hand-out time - stamp of the bins stamped ``stamps_s`` (LSL clock), from the recorded
    telemetry: bin ``b`` ends ``(b + 1) * bin_s`` after session time 0 (the stream's start)
    and goes out with chunk ``b // bins_per_chunk``; NaN where that chunk's telemetry is
    missing."""
    telemetry, t0_lsl_s = recorded_telemetry(work)
    emitted_s = dict(zip(telemetry["seq"].astype(int), telemetry["emitted_at_s"]))
    bins = np.round((stamps_s - t0_lsl_s) / bin_s).astype(int) - 1
    return np.array([emitted_s.get(b // bins_per_chunk, np.nan) for b in bins]) - stamps_s


def analyse(work: str, prefix: str, model_meta: dict) -> dict:
    lsl = np.load(f"{work}/lsl.npz")
    zmq_report = json.load(open(f"{work}/zmq.json"))
    sent = np.load(f"{work}/producer.npy")  # (k, push_time, x_value)
    stamps = lsl["spike_t"]
    dt = np.diff(stamps)
    bin_s = model_meta["bin_s"]
    out = {"lsl": {"n_bins": int(len(stamps)), "gaps_over_1p5_bins": int((dt > 1.5 * bin_s).sum()),
                   "dt_min_s": float(dt.min()), "dt_max_s": float(dt.max()),
                   "stamps_regular_to_1us": bool(np.allclose(dt, bin_s, atol=1e-6)),
                   "bins_expected_first_to_last": int(round((stamps[-1] - stamps[0]) / bin_s)) + 1},
           "zmq": zmq_report}
    # condition-to-spikes latency: which sample did each bin use? (exact float32 match among
    # the samples pushed in the 2 s before the bin's hand-out: with immediate emission the
    # condition is read after the bin's end, so a sample pushed after its stamp can drive it)
    cond_x, cond_t = lsl["condition"][:, 0], lsl["condition_t"]
    cond_out = cond_t + emission_delay_s(work, cond_t, bin_s, model_meta["bins_per_chunk"])
    out["bins_without_telemetry"] = int(np.isnan(cond_out).sum())
    used = []
    for x, t_bin, t_out in zip(cond_x, cond_t, cond_out):
        if np.isnan(t_out):
            continue
        recent = np.flatnonzero((sent[:, 1] <= t_out) & (sent[:, 1] > t_bin - 2.0))
        match = recent[sent[recent, 2] == np.float32(x)]
        if len(match):
            used.append((int(sent[match[-1], 0]), t_bin, t_out))
    out["bins_matched_to_a_sample"] = len(used)
    first_use = {}
    for k, t_bin, t_out in used:
        first_use.setdefault(int(k), (t_bin, t_out))
    # a sample that no bin used directly is served by the first bin using a later one
    ks = np.array(sorted(first_use))
    t_use = np.array([first_use[k][0] for k in ks])
    t_emit = np.array([first_use[k][1] for k in ks])
    lat, lat_stamp = [], []
    first, last = lsl["condition_t"][0], lsl["condition_t"][-1]
    for k, t_push in zip(sent[:, 0].astype(int), sent[:, 1]):
        j = np.searchsorted(ks, k)
        if first <= t_push <= last - 1.0 and j < len(ks):  # samples pushed while streaming
            lat.append(t_emit[j] - t_push)
            lat_stamp.append(t_use[j] - t_push)
    for key, values in (("condition_to_spikes_latency_ms", np.array(lat)),
                        ("condition_to_bin_stamp_latency_ms", np.array(lat_stamp))):
        out[key] = {"p50": float(np.percentile(values, 50) * 1e3),
                    "p99": float(np.percentile(values, 99) * 1e3),
                    "max": float(values.max() * 1e3), "n_samples": int(len(values))}
    # pair each bin's spikes with the condition of the same bin by their stamps (the two
    # inlets need not start at the same bin: pairing by index shifted them by one here)
    _, i_spk, i_cond = np.intersect1d(np.round(lsl["spike_t"] / bin_s).astype(np.int64),
                                      np.round(lsl["condition_t"] / bin_s).astype(np.int64),
                                      return_indices=True)
    out["bins_paired_spikes_condition"] = int(len(i_spk))
    if lsl["spikes"].shape[1] == model_meta["n_data_neurons"]:
        out["decoding"] = _decode_r2(lsl["spikes"][i_spk].astype(float),
                                     lsl["condition"][i_cond])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="m1-velocity")
    parser.add_argument("--duration", type=float, default=600.0)
    parser.add_argument("--work", default="runs/stream_check")
    parser.add_argument("--json", default=None)
    parser.add_argument("--behaviour", choices=["script", "replay"], default="script",
                        help="what drives the stream: the scripted centre-out user, or the "
                             "recorded velocity of the held-out test trials")
    parser.add_argument("--profile", default="default",
                        help="the stream profile `ldns-sim stream` runs with (name or TOML file)")
    parser.add_argument("--probe", action="store_true",
                        help="run scripts/wake_probe.py beside the stream and match late "
                             "chunks with the machine's stalls")
    parser.add_argument("--role", choices=["producer", "lsl", "zmq"], help=argparse.SUPPRESS)
    parser.add_argument("--arg", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "producer":
        return producer(args.arg[0], float(args.arg[1]), args.arg[2], float(args.arg[3]),
                        args.arg[4])
    if args.role == "lsl":
        return lsl_consumer(args.arg[0], float(args.arg[1]), args.arg[2])
    if args.role == "zmq":
        return zmq_consumer(args.arg[0], float(args.arg[1]), args.arg[2])

    from ldns_sim.bundle import load_bundle
    from ldns_sim.pretrained import resolve_model
    from ldns_sim.sinks.profile import load_profile

    os.makedirs(args.work, exist_ok=True)
    cpus = sorted(os.sched_getaffinity(0))  # one probe on each CPU this process may use
    for old in ("session.nwb", "lsl.npz", "zmq.json", "producer.npy",
                *(f"wake_probe_cpu{cpu}.json" for cpu in cpus)):
        if os.path.exists(f"{args.work}/{old}"):
            os.remove(f"{args.work}/{old}")
    bundle = load_bundle(resolve_model(args.model))
    meta = {"bin_s": bundle.meta.bin_s, "n_data_neurons": 84,  # the M1 recording's units
            "bins_per_chunk": load_profile(args.profile).bins_per_chunk}
    tag = uuid.uuid4().hex[:6]
    prefix, behaviour = f"ldns-check-{tag}", f"rig-velocity-{tag}"
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        endpoint = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    me = [sys.executable, __file__]
    w = args.work
    prod = subprocess.Popen(me + ["--role", "producer", "--arg", behaviour,
                                  str(args.duration + 20), f"{w}/producer.npy",
                                  str(bundle.meta.velocity_scale), args.behaviour], env=ENV)
    probes = [subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__),
                                                             "wake_probe.py"),
                                "--duration", str(args.duration + 30), "--cpu", str(cpu),
                                "--rt-priority", str(PROBE_RT_PRIORITY),
                                "--json", f"{w}/wake_probe_cpu{cpu}.json"],
                               stdout=subprocess.DEVNULL)
              for cpu in (cpus if args.probe else ())]
    time.sleep(2.0)
    stream = subprocess.Popen(
        [sys.executable, "-m", "ldns_sim", "stream", "--model", args.model,
         "--condition", f"lsl:{behaviour}", "--duration", str(args.duration),
         "--lsl-prefix", prefix, "--zmq", endpoint, "--record", f"{w}/session.nwb",
         "--profile", args.profile],
        env=ENV, stderr=open(f"{w}/stream.log", "w"))
    consumers = [
        subprocess.Popen(me + ["--role", "lsl", "--arg", prefix, str(args.duration),
                               f"{w}/lsl.npz"], env=ENV),
        subprocess.Popen(me + ["--role", "zmq", "--arg", endpoint, str(args.duration),
                               f"{w}/zmq.json"], env=ENV),
        subprocess.Popen([sys.executable, "../shared/tools/lsl_measure.py", "--machine-scope",
                          "--prefix", prefix, "--expect", "5", "--seconds",
                          str(args.duration - 20), "--pid-tree", str(stream.pid), "--json",
                          f"{w}/lsl_measure.json"], env=ENV,
                         stdout=open(f"{w}/lsl_measure.txt", "w"), stderr=subprocess.STDOUT),
    ]
    stream.wait()
    for p in consumers:
        p.wait(timeout=120)
    prod.wait(timeout=120)
    probe_codes = [probe.wait(timeout=120) for probe in probes]
    time.sleep(1.0)
    report = {"model": args.model, "duration_s": args.duration, "behaviour": args.behaviour,
              "profile": args.profile, "stream_exit_code":
              stream.returncode, **analyse(w, prefix, meta)}
    if any(probe_codes):
        print("a wake_probe failed (see above): no stall report", file=sys.stderr)
    elif probes:
        report["machine_stalls"] = late_chunks_beside_stalls(w, cpus)
    text = json.dumps(report, indent=2, default=float)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
