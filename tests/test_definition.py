"""Container-group definitions: parsing the attempted body, and redacting its secrets."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from remediation.definition import REDACTED, parse_definition, redact
from remediation.errors import InputError
from remediation.model import RegistryCredential

from .reference import SAMPLES

GROUP_ID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/web"
UAMI = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/pull"
SECRETS = ("hunter2-registry", "s3cret-env", "st0rage-k3y", "SecretValue1InBase64", "SecretValue2InBase64",
           "w0rkspace-k3y", "ghp_token123", "init-s3cret")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def secret_laden_body() -> dict[str, Any]:
    """The 2021-10-01 spec example (storage key, secret volume, workspace key) plus every other secret."""
    body: dict[str, Any] = sample("aci_containerGroups_createOrUpdate_identity_subnet_2021-10-01.json")[
        "parameters"]["containerGroup"]
    props = body["properties"]
    # The example's own secret values equal their key names; distinct values make a leak visible.
    assert props["volumes"][0]["azureFile"].pop("storageAccountKey") == "accountKey"
    props["volumes"][0]["azureFile"]["storageAccountKey"] = "st0rage-k3y"
    props["diagnostics"]["logAnalytics"]["workspaceKey"] = "w0rkspace-k3y"
    props["imageRegistryCredentials"] = [
        {"server": "MyAcr.azurecr.io", "identity": UAMI},
        {"server": "other.example.com", "username": "bot", "password": "hunter2-registry"},
    ]
    props["containers"][0]["properties"]["image"] = "myacr.azurecr.io/team/app:v1"
    props["containers"][0]["properties"]["environmentVariables"] = [
        {"name": "PLAIN", "value": "visible"},
        {"name": "TOKEN", "secureValue": "s3cret-env"},
    ]
    props["initContainers"] = [{"name": "init", "properties": {
        "image": "other.example.com/tools/init@sha256:" + "a" * 64,
        "environmentVariables": [{"name": "K", "secureValue": "init-s3cret"}]}}]
    props["volumes"].append({"name": "repo", "gitRepo": {
        "repository": "https://bot:ghp_token123@github.com/org/app.git", "directory": ".", "revision": "main"}})
    body["tags"] = {"team": "web", "aci-remediation": "on"}
    return body


def test_parse_the_spec_example_with_identity_subnet_and_secrets() -> None:
    body = secret_laden_body()
    original = copy.deepcopy(body)
    definition = parse_definition(GROUP_ID, body, "2021-10-01", "replay")

    assert body == original, "parsing must not change the caller's body"
    assert (definition.resource_id, definition.api_version, definition.source) == (GROUP_ID, "2021-10-01", "replay")
    assert definition.location == "west us"
    assert definition.os_type == "Linux"
    assert definition.identity_type == "SystemAssigned, UserAssigned"
    assert definition.user_assigned_identities == (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/identity-name",
    )
    assert definition.subnet_ids == (
        "[resourceId('Microsoft.Network/virtualNetworks/subnets', parameters('vnetName'), parameters('subnetName'))]",
    )
    assert definition.credentials == (
        RegistryCredential(index=0, server="myacr.azurecr.io", identity=UAMI),
        RegistryCredential(index=1, server="other.example.com", username="bot", has_password=True),
    )
    assert [(i.registry, i.repository, i.reference) for i in definition.images] == [
        ("other.example.com", "tools/init", "sha256:" + "a" * 64),
        ("myacr.azurecr.io", "team/app", "v1"),
    ]
    assert definition.tags == {"team": "web", "aci-remediation": "on"}
    assert definition.body == redact(body)


def test_no_secret_survives_anywhere_in_the_parsed_definition() -> None:
    definition = parse_definition(GROUP_ID, secret_laden_body(), None, "activity-log")
    text = json.dumps(definition.body) + repr(definition)
    for secret in SECRETS:
        assert secret not in text, secret


def test_redact_replaces_exactly_the_secrets() -> None:
    body = secret_laden_body()
    out = redact(body)
    props = out["properties"]
    assert props["imageRegistryCredentials"][1] == {
        "server": "other.example.com", "username": "bot", "password": REDACTED}
    assert props["imageRegistryCredentials"][0] == {"server": "MyAcr.azurecr.io", "identity": UAMI}
    assert props["containers"][0]["properties"]["environmentVariables"] == [
        {"name": "PLAIN", "value": "visible"}, {"name": "TOKEN", "secureValue": REDACTED}]
    assert props["initContainers"][0]["properties"]["environmentVariables"] == [{"name": "K", "secureValue": REDACTED}]
    volumes = {v["name"]: v for v in props["volumes"]}
    assert volumes["volume1"]["azureFile"] == {
        "shareName": "shareName", "storageAccountName": "accountName", "storageAccountKey": REDACTED}
    assert volumes["volume3"]["secret"] == {"secretKey1": REDACTED, "secretKey2": REDACTED}
    assert volumes["repo"]["gitRepo"] == {
        "repository": f"https://{REDACTED}@github.com/org/app.git", "directory": ".", "revision": "main"}
    assert props["diagnostics"]["logAnalytics"]["workspaceKey"] == REDACTED
    assert props["diagnostics"]["logAnalytics"]["workspaceId"] == "workspaceid"
    # Everything that is not a secret is kept as it was.
    assert out["identity"] == body["identity"]
    assert props["subnetIds"] == body["properties"]["subnetIds"]
    assert props["dnsConfig"] == body["properties"]["dnsConfig"]
    assert body["properties"]["imageRegistryCredentials"][1]["password"] == "hunter2-registry"


def test_redact_covers_sdk_snake_case_bodies_and_any_casing() -> None:
    body = {"properties": {"image_registry_credentials": [{"server": "a.io", "Password": "p1"}],
                           "containers": [{"properties": {"environment_variables": [{"secure_value": "p2"}]}}],
                           "volumes": [{"azure_file": {"storage_account_key": "p3"}}]}}
    text = json.dumps(redact(body))
    assert not any(p in text for p in ("p1", "p2", "p3"))


def test_git_repo_without_credentials_is_unchanged() -> None:
    body = {"properties": {"volumes": [{"name": "g", "gitRepo": {"repository": "https://github.com/org/app.git"}}]}}
    assert redact(body) == body


def test_template_resource_uses_its_api_version_and_keeps_the_docs_typo() -> None:
    body = sample("aci_arm_containerGroup_acr_user_assigned_identity_docs_2021.json")
    definition = parse_definition(GROUP_ID, body, None, "deployment")
    assert definition.api_version == "2021-09-01"
    assert definition.user_assigned_identities[0].endswith("/myACRId")
    assert definition.credentials[0].identity is not None and definition.credentials[0].identity.endswith("/myACRIdt")
    assert [i.raw for i in definition.images] == ["myacr.azurecr.io/hello-world:latest"]
    assert parse_definition(GROUP_ID, body, "2023-05-01", "deployment").api_version == "2023-05-01"


def test_failed_group_from_get_with_username_credentials() -> None:
    body = sample("aci_containerGroups_get_failed_2021-10-01.json")["responses"]["200"]["body"]
    definition = parse_definition(body["id"], body, "2021-10-01", "existing")
    assert definition.credentials == (RegistryCredential(0, "azcloudconsoleregistry.azurecr.io",
                                                         username="azcloudconsoleregistry"),)
    assert definition.identity_type is None and definition.user_assigned_identities == ()
    assert [(i.registry, i.repository) for i in definition.images] == [("docker.io", "library/nginx")]


def test_support_article_fragment_and_an_empty_body() -> None:
    fragment = sample("aci_identity_and_imageRegistryCredentials_fragment_support_article.json")
    definition = parse_definition(GROUP_ID, fragment, None, "snapshot")
    assert definition.credentials[0].server == "<registry-name>.azurecr.io"
    assert definition.images == ()
    empty = parse_definition(GROUP_ID, {}, None, "snapshot")
    assert (empty.credentials, empty.images, empty.subnet_ids, empty.tags, empty.body) == ((), (), (), {}, {})


def test_duplicate_images_are_listed_once() -> None:
    container = {"name": "a", "properties": {"image": "a.azurecr.io/x:1"}}
    definition = parse_definition(GROUP_ID, {"properties": {"containers": [container, container]}}, None, "replay")
    assert len(definition.images) == 1


def test_credential_without_server_and_empty_strings() -> None:
    body = {"properties": {"imageRegistryCredentials": [{"server": "", "username": "", "identity": UAMI}]}}
    (credential,) = parse_definition(GROUP_ID, body, None, "replay").credentials
    assert credential == RegistryCredential(index=0, server=None, username=None, identity=UAMI)


@pytest.mark.parametrize(("body", "message"), [
    ([], "definition is not a JSON object"),
    ({"properties": []}, "properties is not a JSON object"),
    ({"identity": {"userAssignedIdentities": []}}, "identity.userAssignedIdentities is not a JSON object"),
    ({"properties": {"containers": {}}}, "properties.containers is not an array"),
    ({"properties": {"containers": [{"properties": {}}]}}, "properties.containers[0].properties.image is missing"),
    ({"properties": {"initContainers": ["x"]}}, "properties.initContainers[0] is not a JSON object"),
    ({"properties": {"containers": [{"properties": {"image": "a.io/x"}}, {"properties": {"image": "a.io/Y"}}]}},
     "properties.containers[1].properties.image 'a.io/Y' is not a valid image reference: repository component "
     "'Y' must be lower-case"),
    ({"properties": {"imageRegistryCredentials": ["x"]}},
     "properties.imageRegistryCredentials[0] is not a JSON object"),
])
def test_malformed_definitions_name_the_field(body: Any, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_definition(GROUP_ID, body, None, "replay")
    assert str(caught.value) == message


def test_a_network_profile_counts_as_vnet_injection() -> None:
    body = {"location": "eastus", "properties": {
        "containers": [{"name": "a", "properties": {"image": "myacr.azurecr.io/app:v1"}}],
        "networkProfile": {"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkProfiles/np"}}}
    definition = parse_definition("/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/"
                                  "containerGroups/cg", body, "2021-03-01", "activity-log")
    assert definition.subnet_ids == (body["properties"]["networkProfile"]["id"],)


def test_protected_settings_of_extensions_are_redacted() -> None:
    body = {"properties": {"extensions": [{"name": "kube", "properties": {
        "extensionType": "kube-proxy", "protectedSettings": {"kubeConfig": "c2VjcmV0LWt1YmVjb25maWc="}}}]}}
    assert "c2VjcmV0" not in str(redact(body))
