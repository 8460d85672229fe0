"""DatasetConfig: one shape for every dataset config; `path` for your own data; an absent local
dataset is built from the shipped zoo only when `build` says so."""

import pytest

from sdw.collect import rebuild
from sdw.data.d4rl import D4RLSource
from sdw.data.errors import DatasetError
from sdw.data.minari_source import MinariSource
from sdw.data.source import DatasetConfig


def test_path_wins_over_name_and_picks_the_source_kind(tmp_path):
    own = DatasetConfig(name="sdw/hopper/medium-v0", path=str(tmp_path / "walker2d_mine.hdf5"))
    assert isinstance(own.source(), D4RLSource) and own.source().path.endswith("walker2d_mine.hdf5")
    minari = DatasetConfig(path="mujoco/hopper/medium-v0").source()
    assert isinstance(minari, MinariSource) and minari.source == "minari"
    local = DatasetConfig(name="sdw/hopper/medium-v0").source()
    assert isinstance(local, MinariSource) and local.source == "local"
    assert DatasetConfig(name="hopper-medium-v2").source().name == "hopper-medium-v2"
    with pytest.raises(DatasetError, match="names no dataset"):
        DatasetConfig().source()


@pytest.mark.parametrize("build, expected", [(True, ["sdw/hopper/medium-v0"]), (False, [])])
def test_an_absent_local_dataset_is_built_only_when_asked(build, expected, monkeypatch):
    built = []
    monkeypatch.setattr(rebuild, "rebuild_local", built.append)
    with pytest.raises(DatasetError, match="sdw-collect mode=rebuild env=hopper"):
        rebuild.load_or_build(DatasetConfig(name="sdw/hopper/medium-v0", build=build))  # still absent
    assert built == expected
    with pytest.raises(DatasetError, match=r"sdw-collect mode=rebuild env=hopper build.levels=\[medium\]"):
        DatasetConfig(name="sdw/hopper/medium-v0", build=True).load()  # the data layer never builds
    assert built == expected


def test_a_bad_local_id_is_named():
    with pytest.raises(DatasetError, match="not a local dataset id"):
        rebuild.rebuild_local("sdw/hopper")
