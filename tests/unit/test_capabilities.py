"""--cap-add, --cap-drop and --privileged: names, and Docker's arithmetic."""
import pytest

from pyrt_core.capabilities import CAP_NAMES, DEFAULT_CAPS, effective_set, normalize, parse_flag
from pyrt_core.errors import UsageError


def test_names_normalize_like_docker():
    assert normalize("net_admin") == normalize("CAP_NET_ADMIN") == "CAP_NET_ADMIN"
    assert normalize(" all ") == "ALL"
    assert parse_flag(["net_admin", "SYS_TIME,cap_chown", "NET_ADMIN"], "--cap-add") == [
        "CAP_NET_ADMIN", "CAP_SYS_TIME", "CAP_CHOWN"]
    assert parse_flag(None, "--cap-drop") == []


@pytest.mark.parametrize("value,why", [("FOO", "unknown capability 'CAP_FOO'"),
                                       ("CHOWN,", "empty capability name"), ("", "empty")])
def test_unknown_or_empty_names_are_refused(value, why):
    with pytest.raises(UsageError, match=why) as e:
        parse_flag([value], "--cap-add")
    assert str(e.value).startswith("invalid --cap-add ") and "\n" not in str(e.value)


def test_docker_arithmetic():
    assert effective_set() == list(DEFAULT_CAPS)
    assert effective_set(["CAP_NET_ADMIN"], ["CAP_CHOWN"]) == [
        c for c in DEFAULT_CAPS if c != "CAP_CHOWN"] + ["CAP_NET_ADMIN"]
    assert sorted(effective_set(["CAP_CHOWN"], ["CAP_CHOWN"])) == sorted(DEFAULT_CAPS)  # add wins
    assert effective_set(["CAP_CHOWN", "CAP_SYS_TIME"], ["ALL"]) == ["CAP_CHOWN", "CAP_SYS_TIME"]
    everything_but = effective_set(["ALL"], ["CAP_SYS_ADMIN"])
    assert "CAP_SYS_ADMIN" not in everything_but and len(everything_but) == len(CAP_NAMES) - 1
    assert effective_set(["ALL"], ["ALL"]) == list(CAP_NAMES)  # docker: ALL added wins
    assert effective_set(privileged=True) == list(CAP_NAMES)
    assert effective_set([], ["CAP_CHOWN"], privileged=True) == list(CAP_NAMES)


def test_kernel_numbers_are_the_list_order():
    assert CAP_NAMES.index("CAP_CHOWN") == 0 and CAP_NAMES.index("CAP_SYS_ADMIN") == 21
    assert CAP_NAMES.index("CAP_CHECKPOINT_RESTORE") == 40
