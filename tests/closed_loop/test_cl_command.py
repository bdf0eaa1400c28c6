"""``ldns-sim closed-loop`` runs headless and records the session to NWB."""

import numpy as np
import pytest

from ldns_sim.cli import main


def test_cli_runs_headless_and_records(tmp_path, capsys):
    out = tmp_path / "session.nwb"
    code = main(["closed-loop", "--decoder", "wiener", "--model", "tuning", "--duration", "6",
                 "--calibration", "20", "--record", str(out), "--perturb", "noise:30@2-4",
                 "--save-decoder", str(tmp_path / "w.npz")])
    assert code == 0
    assert '"n_trials"' in capsys.readouterr().out
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        cursor = nwb.processing["closed_loop"]["cursor_position"]
        assert cursor.data.shape == (120, 2)
        np.testing.assert_allclose(cursor.timestamps[:2], [0.05, 0.1])
        assert nwb.processing["ecephys"]["binned_spike_counts"].data.shape == (120, 84)
        trials = nwb.intervals["task_trials"].to_dataframe()
        assert len(trials) >= 2 and set(trials.outcome) <= {"success", "timeout",
                                                             "wrong_target"}
        notes = list(nwb.events["markers"].to_dataframe().annotation)
        assert "perturbation_start:noise:30" in notes and "perturbation_stop:noise:30" in notes
        table = nwb.intervals["perturbations"].to_dataframe()
        assert list(table.spec) == ["noise:30@2-4"]
        assert (table.start_time.iloc[0], table.stop_time.iloc[0]) == pytest.approx((2.0, 4.0))
        assert any(n.startswith("trial_end:0:") for n in notes)
    assert (tmp_path / "w.npz").is_file()


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert main(["closed-loop", "--decoder", "kalman", "--model", "tuning",
                 "--perturb", "dropout:2"]) == 2
    assert "dropout" in capsys.readouterr().err
    assert main(["closed-loop", "--decoder", "kalman", "--model", "tuning",
                 "--record", str(tmp_path / "x.txt")]) == 2


@pytest.mark.slow
def test_cli_with_a_model_bundle(tmp_path):
    from ldns_sim.bundle import save_bundle
    from ldns_sim.testing import make_random_bundle

    bundle_dir = save_bundle(make_random_bundle(16, preset="tiny"), tmp_path / "m")
    assert main(["closed-loop", "--decoder", "kalman", "--model", str(bundle_dir),
                 "--duration", "3", "--calibration", "5", "--steps", "2"]) == 0


def test_a_session_without_a_finished_trial_still_records(tmp_path):
    out = tmp_path / "short.nwb"
    assert main(["closed-loop", "--decoder", "ideal", "--model", "tuning", "--duration", "0.5",
                 "--record", str(out)]) == 0
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        trials = nwb.intervals["task_trials"].to_dataframe()
        assert len(trials) == 0 and "outcome" in trials.columns
        assert nwb.processing["closed_loop"]["cursor_position"].data.shape == (10, 2)
