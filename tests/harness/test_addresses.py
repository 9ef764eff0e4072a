"""harness.core.addresses: loopback, private 0700 dirs, AF_UNIX path limits, absence."""

from __future__ import annotations

import os
import socket
import stat
import sys
import tempfile
import warnings

import pytest

from harness import shapes
from harness.core import addresses, capabilities
from harness.core.addresses import PrivateDirError, UnixPathTooLong, UnsupportedFeature

needs_unix = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="AF_UNIX absent")


def test_loopback_is_port_zero_on_loopback():
    assert addresses.loopback("inet") == ("127.0.0.1", 0)
    if capabilities.caps().ipv6:
        assert addresses.loopback("inet6") == ("::1", 0)
    with pytest.raises(ValueError, match="unix_address"):
        addresses.loopback("unix")
    with pytest.raises(ValueError, match="unknown address family"):
        addresses.loopback("ipx")


def test_family_names_round_trip():
    assert addresses.family_name(socket.AF_INET) == "inet"
    assert addresses.family_name(socket.AF_INET6) == "inet6"
    assert addresses.socket_family("inet") == socket.AF_INET
    assert addresses.family_for_class("ForkingUnixStreamServer") == "unix"
    assert addresses.family_for_class("ThreadingUDPServer") == "inet"
    assert addresses.is_datagram_class("UnixDatagramServer")
    assert addresses.is_datagram_class("ForkingUDPServer")
    assert not addresses.is_datagram_class("TCPServer")


def test_private_dir_is_0700_short_tracked_and_removed():
    with addresses.private_dir() as path:
        assert os.path.isdir(path)
        if os.name == "posix":
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        assert path in addresses.live_private_dirs()
        # room for a socket name within the strictest (macOS) limit
        assert len(os.fsencode(path)) + 20 <= addresses.sun_path_limit("darwin")
        with open(os.path.join(path, "file"), "w") as handle:
            handle.write("x")
    assert not os.path.exists(path)
    assert path not in addresses.live_private_dirs()


@pytest.mark.skipif(os.name != "posix" or not os.path.isdir("/tmp"), reason="POSIX /tmp")
def test_private_dir_avoids_a_long_tmpdir(monkeypatch, tmp_path):
    long_dir = tmp_path / ("x" * 60)
    long_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(long_dir))
    with addresses.private_dir() as path:
        assert os.path.dirname(path) == "/tmp"


def test_private_dir_that_cannot_be_removed_raises(monkeypatch):
    monkeypatch.setattr(addresses.shutil, "rmtree", lambda *a, **k: None)
    with pytest.raises(PrivateDirError, match="still exists"):
        with addresses.private_dir() as path:
            pass
    os.rmdir(path)


def test_private_dir_failure_does_not_mask_the_block_error(monkeypatch):
    monkeypatch.setattr(addresses.shutil, "rmtree", lambda *a, **k: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyError):
            with addresses.private_dir() as path:
                raise KeyError("the real error")
    os.rmdir(path)
    assert any("cannot remove private directory" in str(w.message) for w in caught)


@needs_unix
def test_unix_address_checks_the_platform_limit():
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory)
        assert path == os.path.join(directory, "s")
        room = addresses.sun_path_limit() - len(os.fsencode(directory)) - 1
        assert addresses.unix_address(directory, "n" * room)  # exactly at the limit
        with pytest.raises(UnixPathTooLong, match=str(addresses.sun_path_limit())):
            addresses.unix_address(directory, "n" * (room + 1))
        with pytest.raises(ValueError, match="separator"):
            addresses.unix_address(directory, "a/b")


@needs_unix
@pytest.mark.skipif(not sys.platform.startswith("linux") or shapes.active() is not None,
                    reason="Linux's sun_path (an OS shape keeps sys.platform linux but changes the limit)")
def test_limit_matches_what_the_kernel_accepts():
    with addresses.private_dir() as directory:
        room = addresses.sun_path_limit() - len(os.fsencode(directory)) - 1
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(addresses.unix_address(directory, "n" * room))
        with socket.socket(socket.AF_UNIX) as sock, pytest.raises(OSError):
            sock.bind(os.path.join(directory, "n" * (room + 1)))


def test_sun_path_limits_per_platform():
    assert addresses.sun_path_limit("linux") == 107
    assert addresses.sun_path_limit("darwin") == 103
    assert addresses.sun_path_limit("freebsd14") == 103


def test_unix_is_refused_clearly_when_absent():
    with capabilities.simulate_absent("af_unix"):
        assert not addresses.supported("unix")
        with pytest.raises(UnsupportedFeature, match="af_unix") as info:
            addresses.socket_family("unix")
        assert info.value.capability == "af_unix"
        with addresses.private_dir() as directory:
            with pytest.raises(UnsupportedFeature):
                addresses.unix_address(directory)
            with pytest.raises(UnsupportedFeature):
                addresses.server_address_for("unix", directory)
        assert addresses.server_address_for("inet") == ("127.0.0.1", 0)


def test_ipv6_is_refused_when_absent():
    with capabilities.simulate_absent("ipv6"):
        with pytest.raises(UnsupportedFeature, match="ipv6"):
            addresses.loopback("inet6")


def test_server_address_for_unix_needs_a_directory():
    with pytest.raises(ValueError, match="private_dir"):
        addresses.server_address_for("unix")


@needs_unix
def test_socket_files_finds_sockets_only():
    with addresses.private_dir() as directory:
        path = addresses.unix_address(directory)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(path)
        with open(os.path.join(directory, "plain"), "w"):
            pass
        assert addresses.socket_files(directory) == [path]
    assert addresses.socket_files(directory) == []
