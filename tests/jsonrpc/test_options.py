"""JsonRpcClient options: protocol= never silently drops the client's own options; exports."""

from __future__ import annotations

import pytest

import maxsdk
from maxsdk.protocol.jsonrpc import JsonRpcProtocol

pytestmark = pytest.mark.timeout(30)

URL = "ws://127.0.0.1:1"


@pytest.mark.parametrize(
    "option",
    [{"string_ids": True}, {"auth_method": "rpc.login"}, {"ping_method": "ping"}, {"update_method": "subscription"}],
)
def test_options_that_protocol_would_override_are_refused(option):
    with pytest.raises(maxsdk.ConfigurationError, match="would be ignored with protocol="):
        maxsdk.JsonRpcClient(URL, protocol=JsonRpcProtocol(), **option)


def test_a_customised_protocol_is_used_as_given():
    protocol = maxsdk.JsonRpcProtocol(string_ids=True, auth_method="rpc.login", update_methods=("subscription",))
    client = maxsdk.JsonRpcClient(URL, protocol=protocol)
    assert client.protocol is protocol and protocol.string_ids and protocol.is_update_method("subscription")


def test_the_client_options_build_the_protocol():
    client = maxsdk.JsonRpcClient(URL, string_ids=True, auth_method="rpc.login", update_method="subscription")
    protocol = client.protocol
    assert isinstance(protocol, JsonRpcProtocol)
    assert protocol.string_ids and protocol.auth_method == "rpc.login"
    assert protocol.is_update_method("subscription") and protocol.is_update_method("eth_subscription")


def test_a_protocol_that_is_not_json_rpc_is_refused():
    with pytest.raises(maxsdk.ConfigurationError):
        maxsdk.JsonRpcClient(URL, protocol=maxsdk.JsonFeedProtocol())


def test_the_protocol_classes_are_exported():
    assert maxsdk.JsonRpcProtocol is JsonRpcProtocol
    assert "JsonRpcProtocol" in maxsdk.__all__ and "JsonFeedProtocol" in maxsdk.__all__
