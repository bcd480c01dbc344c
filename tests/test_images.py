"""Image references read with Docker's rules."""

from __future__ import annotations

import pytest

from remediation.errors import InputError
from remediation.images import is_acr, parse_image

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(("raw", "registry", "repository", "tag", "digest"), [
    ("nginx", "docker.io", "library/nginx", None, None),
    ("nginx:1.25-alpine", "docker.io", "library/nginx", "1.25-alpine", None),
    ("bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
    ("docker.io/nginx", "docker.io", "library/nginx", None, None),
    ("index.docker.io/library/nginx:latest", "docker.io", "library/nginx", "latest", None),
    ("myacr.azurecr.io/pythonworker:v1", "myacr.azurecr.io", "pythonworker", "v1", None),
    ("myacr.azurecr.io/team/sub/app", "myacr.azurecr.io", "team/sub/app", None, None),
    ("MyAcr.AzureCR.io/app:V1", "myacr.azurecr.io", "app", "V1", None),
    ("myreg.example.com:5000/app:1", "myreg.example.com:5000", "app", "1", None),
    ("localhost/app", "localhost", "app", None, None),
    ("localhost:5000/app", "localhost:5000", "app", None, None),
    ("registry:5000/app", "registry:5000", "app", None, None),
    ("Upper/app", "upper", "app", None, None),
    (f"myacr.azurecr.io/app@{DIGEST}", "myacr.azurecr.io", "app", None, DIGEST),
    (f"myacr.azurecr.io/app:v2@{DIGEST}", "myacr.azurecr.io", "app", "v2", DIGEST),
    (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST),
    ("my-acr.azurecr.cn/a.b_c__d--e:t", "my-acr.azurecr.cn", "a.b_c__d--e", "t", None),
])
def test_parse_image(raw: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    image = parse_image(raw)
    assert (image.raw, image.registry, image.repository, image.tag, image.digest) == (
        raw, registry, repository, tag, digest)


def test_reference_prefers_digest_then_tag_then_latest() -> None:
    assert parse_image(f"a.io/x:v1@{DIGEST}").reference == DIGEST
    assert parse_image("a.io/x:v1").reference == "v1"
    assert parse_image("a.io/x").reference == "latest"


@pytest.mark.parametrize(("raw", "message"), [
    ("", "image is empty"),
    ("MyApp:1", "image 'MyApp:1' is not a valid image reference: repository component 'MyApp' must be lower-case"),
    ("myacr.azurecr.io/Team/app", "image 'myacr.azurecr.io/Team/app' is not a valid image reference: "
     "repository component 'Team' must be lower-case"),
    ("app@sha256:abc", "image 'app@sha256:abc' is not a valid image reference: "
     "digest 'sha256:abc' is not sha256:<64 lower-case hex> (or sha384/sha512)"),
    (f"app@md5:{'a' * 64}", f"image 'app@md5:{'a' * 64}' is not a valid image reference: "
     f"digest 'md5:{'a' * 64}' is not sha256:<64 lower-case hex> (or sha384/sha512)"),
    ("app:", "image 'app:' is not a valid image reference: tag '' is not valid"),
    ("app:-x", "image 'app:-x' is not a valid image reference: tag '-x' is not valid"),
    ("a b", "image 'a b' is not a valid image reference: it contains whitespace"),
    (" nginx", "image ' nginx' is not a valid image reference: it contains whitespace"),
    ("reg.io/", "image 'reg.io/' is not a valid image reference: the repository has an empty path component"),
    ("reg.io//x", "image 'reg.io//x' is not a valid image reference: the repository has an empty path component"),
    ("reg:abc/x", "image 'reg:abc/x' is not a valid image reference: registry port 'abc' is not a number "
     "from 1 to 65535"),
    ("reg.io:70000/x", "image 'reg.io:70000/x' is not a valid image reference: registry port '70000' is not a "
     "number from 1 to 65535"),
    ("-bad.io/x", "image '-bad.io/x' is not a valid image reference: registry host '-bad.io' is not a valid "
     "host name"),
    ("app_/x", "image 'app_/x' is not a valid image reference: repository component 'app_' has characters "
     "outside [a-z0-9._-]"),
    ("@" + DIGEST, f"image '@{DIGEST}' is not a valid image reference: the name is empty"),
    ("a.io/" + "x" * 260, f"image 'a.io/{'x' * 260}' is not a valid image reference: the name is longer than "
     "255 characters"),
])
def test_invalid_references(raw: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_image(raw)
    assert str(caught.value) == message


def test_the_field_is_named_in_the_message() -> None:
    with pytest.raises(InputError, match=r"^properties\.containers\[2\]\.properties\.image 'Bad' "):
        parse_image("Bad", field="properties.containers[2].properties.image")


@pytest.mark.parametrize(("host", "expected"), [
    ("myacr.azurecr.io", True),
    ("MYACR.AZURECR.IO", True),
    ("myacr.azurecr.cn", True),
    ("myacr.azurecr.us", True),
    ("myacr.azurecr.io:443", True),
    ("azurecr.io", False),
    (".azurecr.io", False),
    ("myacr.azurecr.io.evil.example", False),
    ("docker.io", False),
    ("myreg.example.com:5000", False),
])
def test_is_acr(host: str, expected: bool) -> None:
    assert is_acr(host) is expected
