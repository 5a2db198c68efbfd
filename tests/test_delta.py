"""Shipped deltas (mlmtool.delta): quantisation error bounds, xz round trip, bad files."""

import pytest
import torch

from mlmtool.delta import apply_delta, make_delta, save_delta


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    base = {"w": torch.randn(300, 256, generator=g), "b": torch.randn(256, generator=g)}
    tuned = {"w": base["w"] + 0.01 * torch.randn(300, 256, generator=g), "b": base["b"] + 1.0,
             "new": torch.randn(4, 4, generator=g)}
    return base, tuned


def _restore(base, delta):
    """Apply ``delta`` to a copy of ``base`` by hand: W = W_base + dq * ds[:, None]."""
    w = base["w"] + delta["w.dq"].float() * delta["w.ds"].float()[:, None]
    return w


def test_int8_error_is_at_most_half_a_step():
    base, tuned = _pair()
    delta = make_delta(base, tuned)
    assert delta["w.dq"].dtype == torch.int8 and delta["w.dq"].abs().max() == 127
    step = delta["w.ds"].float()[:, None]
    # half a step, plus the float16 rounding of the scale (relative 2**-11) times 127 steps
    assert ((_restore(base, delta) - tuned["w"]).abs() <= step * (0.5 + 127 * 2 ** -11)).all()
    assert torch.equal(delta["b"], tuned["b"].half()) and torch.equal(delta["new"], tuned["new"].half())


def test_step_rms_sets_the_step_from_each_rows_rms():
    base, tuned = _pair()
    delta = make_delta(base, tuned, step_rms=0.5)
    rms = (tuned["w"] - base["w"]).pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(delta["w.ds"].float(), 0.5 * rms, rtol=1e-3, atol=0)
    # a Gaussian change: integers within a few steps, error at most half a step
    assert delta["w.dq"].abs().max() <= 12
    step = delta["w.ds"].float()[:, None]  # half a step, plus the scale's float16 rounding x 12 steps
    assert ((_restore(base, delta) - tuned["w"]).abs() <= step * (0.5 + 12 * 2 ** -11) + 1e-6).all()
    with pytest.raises(ValueError, match="bits"):
        make_delta(base, tuned, bits=9)


def test_unchanged_tensors_are_left_out():
    base, tuned = _pair()
    tuned["b"] = base["b"].clone()
    assert "b" not in make_delta(base, tuned)


def test_xz_file_round_trips_and_is_smaller(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(256, 300)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    tuned = {"weight": base["weight"] + 0.01 * torch.randn(300, 256), "bias": base["bias"] + 1}
    delta = make_delta(base, tuned, step_rms=0.5)
    plain = save_delta(delta, tmp_path / "d.safetensors", base="test")
    packed = save_delta(delta, tmp_path / "d.safetensors.xz", base="test")
    assert packed.stat().st_size < 0.6 * plain.stat().st_size  # small integers pack well
    results = []
    for path in (plain, packed):
        model.load_state_dict(base)
        assert sorted(apply_delta(model, path)) == ["bias", "weight"]
        results.append(model.weight.detach().clone())
    assert torch.equal(results[0], results[1])
    torch.testing.assert_close(results[1], tuned["weight"], atol=0.01, rtol=0)


def test_bad_files_raise_value_error(tmp_path):
    from safetensors.torch import save_file

    model = torch.nn.Linear(2, 2)
    junk = tmp_path / "junk.safetensors.xz"
    junk.write_bytes(b"not xz at all")
    with pytest.raises(ValueError, match="not an mlmtool delta"):
        apply_delta(model, junk)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"weight": torch.zeros(2, 2)}, str(foreign))  # no mlmtool metadata
    with pytest.raises(ValueError, match="not an mlmtool delta"):
        apply_delta(model, foreign)
    wrong = save_delta({"other.weight": torch.zeros(2, 2)}, tmp_path / "wrong.safetensors", base="x")
    with pytest.raises(ValueError, match="other.weight"):
        apply_delta(model, wrong)


def test_same_delta_gives_same_bytes_in_every_process(tmp_path):
    """safetensors orders ``__metadata__`` by a per-process hash; save_delta sorts the header."""
    import json
    import struct
    import subprocess
    import sys

    code = ("import sys, torch; from mlmtool.delta import make_delta, save_delta; torch.manual_seed(0); "
            "b = {'w': torch.randn(8, 8)}; t = {'w': b['w'] + 0.1 * torch.randn(8, 8)}; "
            "save_delta(make_delta(b, t, step_rms=0.5), sys.argv[1], base='minilm')")
    files = [tmp_path / f"d{i}.safetensors" for i in range(3)]
    for f in files:
        subprocess.run([sys.executable, "-c", code, str(f)], check=True)
    data = [f.read_bytes() for f in files]
    assert data[0] == data[1] == data[2]
    (n,) = struct.unpack("<Q", data[0][:8])
    header = data[0][8:8 + n].decode().rstrip()
    assert header == json.dumps(json.loads(header), sort_keys=True, separators=(",", ":"))
