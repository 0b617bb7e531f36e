"""The Inception weights: where they are looked for, the one-line message when they are missing, and safe loading
(weights_only=True: a replaced file cannot run code)."""

import os
from pathlib import Path
from unittest import mock

import pytest
import torch

from difftui.engine.eval.metrics import weights
from difftui.engine.eval.metrics.inception import load_inception, load_weights_safely
from difftui.engine.eval.metrics.weights import (
    INCEPTION_FILE,
    INCEPTION_URL,
    InceptionWeightsMissing,
    locate_inception,
    missing_message,
)


@pytest.fixture(autouse=True)
def no_weights_anywhere(tmp_path, monkeypatch):
    """An empty difftui cache and torch hub, no DIFFTUI_INCEPTION."""
    monkeypatch.setenv("DIFFTUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("DIFFTUI_INCEPTION", raising=False)


def test_the_documented_file_and_url_are_torch_fidelitys():
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    assert INCEPTION_URL == URL_INCEPTION_V3 and INCEPTION_FILE == "weights-inception-2015-12-05-6726825d.pth"


def test_a_missing_explicit_file_is_one_line_naming_it_the_file_and_the_url(tmp_path):
    where = tmp_path / "nope" / "inception.pth"
    with pytest.raises(InceptionWeightsMissing) as e:
        locate_inception(where)
    text = str(e.value)
    assert "\n" not in text and str(where) in text and INCEPTION_FILE in text and INCEPTION_URL in text
    assert "--inception PATH" in text and "DIFFTUI_INCEPTION" in text


def test_no_weights_and_no_network_is_one_line_saying_where_to_put_them(tmp_path, monkeypatch):
    assert locate_inception() is None
    with pytest.raises(InceptionWeightsMissing) as e:
        load_inception(None, allow_download=False)
    assert str(e.value) == missing_message()
    assert str(tmp_path / "cache" / "inception" / INCEPTION_FILE) in str(e.value)
    # The documented download, on a machine where it cannot connect: the same line, with the reason.
    with pytest.raises(InceptionWeightsMissing) as e:
        weights.download_inception("http://127.0.0.1:9/" + INCEPTION_FILE)
    assert str(e.value).startswith(missing_message()) and "download failed" in str(e.value)
    assert not (tmp_path / "cache" / "inception" / INCEPTION_FILE).exists()


def test_the_cache_and_the_torch_hub_folder_are_found(tmp_path):
    hub = tmp_path / "torch" / "hub" / "checkpoints" / INCEPTION_FILE
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert locate_inception() == hub
    ours = tmp_path / "cache" / "inception" / INCEPTION_FILE
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"x")
    assert locate_inception() == ours                      # the difftui cache first


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_weights_file_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code-ran"
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1), "evil": Payload(marker)}, bad, pickle_protocol=2)
    with pytest.raises(InceptionWeightsMissing, match="not a usable Inception weights file"):
        load_weights_safely(bad)
    assert not marker.exists()
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(InceptionWeightsMissing, match="text.pth"):
        load_weights_safely(tmp_path / "text.pth")


def test_torch_fidelitys_inception_runs_from_a_local_weights_file(tmp_path):
    """The real network and its resize to 299 x 299, with random weights written in the file's format (the real
    file is not on this machine): 2048 features per image, the same as the architecture read them."""
    from torch_fidelity import feature_extractor_inceptionv3 as fe
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None):
        torch.manual_seed(0)
        reference = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    path = tmp_path / INCEPTION_FILE
    torch.save(reference.state_dict(), path)
    net = load_inception(path)
    assert net.get_name() == "inception-v3-compat" and not net.training
    for name, value in reference.state_dict().items():
        assert torch.equal(net.state_dict()[name], value), name
    (feats,) = net(torch.randint(0, 256, (1, 3, 32, 32), dtype=torch.uint8))
    assert feats.shape == (1, 2048) and bool(torch.isfinite(feats).all())
    bad = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(3)}, bad)
    with pytest.raises(InceptionWeightsMissing, match="not torch-fidelity's InceptionV3 weights"):
        load_inception(bad)
