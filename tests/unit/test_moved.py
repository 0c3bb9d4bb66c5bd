"""Names that moved stay importable from their old module, with a warning that says where."""

from __future__ import annotations

import pytest

from jobservice import messages, plugin


def test_a_moved_name_is_the_same_object_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="import it from jobservice.plugin"):
        from jobservice.messages import ItemHandler

    assert ItemHandler is plugin.ItemHandler


def test_a_name_that_never_was_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        messages.Nothing  # noqa: B018
