"""Every "bad input" error derives from sdw.errors.UserError, which the apps turn into exit 2."""

import pytest

from sdw.atomic import UnwritableLocationError, check_writable
from sdw.data.errors import DatasetError
from sdw.density.base import DensityError
from sdw.errors import UserError


@pytest.mark.parametrize("error", [DatasetError, DensityError, UnwritableLocationError])
def test_bad_input_errors_are_user_errors(error):
    assert issubclass(error, UserError)


def test_density_error_stays_a_value_error():
    assert issubclass(DensityError, ValueError)


def test_check_writable_names_the_blocking_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UnwritableLocationError, match=r"cannot write the cache .*: .*file is a file"):
        check_writable(tmp_path / "file" / "sub" / "x.npz", "the cache")
    assert check_writable(tmp_path / "new" / "x.npz", "the cache") == tmp_path / "new" / "x.npz"
    assert not (tmp_path / "new").exists()  # the check leaves nothing behind
