"""images.configcheck: an image config's field types, as docker's typed decoding checks
them, refused with one line before anything is stored."""
import json

import pytest

from pyrt_core.errors import ImageError
from pyrt_core.images.configcheck import check_config, check_image, parse_config
from pyrt_core.models import Image, ImageConfig

ROOTFS = {"type": "layers", "diff_ids": []}

BAD = [
    ({"Cmd": 5}, "Cmd must be an array of strings, not number"),
    ({"Cmd": ["a", 1]}, r"Cmd\[1\] must be a string, not number"),
    ({"Entrypoint": {"a": 1}}, "Entrypoint must be an array of strings, not object"),
    ({"User": 5}, "User must be a string, not number"),
    ({"WorkingDir": []}, "WorkingDir must be a string, not array"),
    ({"WorkingDir": "/a" * 3000}, "WorkingDir is longer than 4095 bytes"),
    ({"Env": [1]}, r"Env\[0\] must be a string, not number"),
    ({"Env": "A=1"}, "Env must be an array of strings, not string"),
    ({"Env": ["A=\x00"]}, r"Env\[0\] contains a NUL character"),
    ({"Labels": 5}, "Labels must be an object of strings, not number"),
    ({"Labels": {"a": 1}}, r"Labels\['a'\] must be a string, not number"),
    ({"ExposedPorts": ["80/tcp"]}, "ExposedPorts must be an object, not array"),
    ({"ExposedPorts": {"80/tcp": 5}}, r"ExposedPorts\['80/tcp'\] must be an object, not number"),
    ({"Volumes": 5}, "Volumes must be an object, not number"),
    ({"StopSignal": 9}, "StopSignal must be a string, not number"),
    ({"Healthcheck": 5}, "Healthcheck must be an object, not number"),
    ({"Healthcheck": {"Test": "CMD true"}}, "Healthcheck.Test must be an array of strings"),
    ({"Healthcheck": {"Interval": "5s"}}, "Healthcheck.Interval must be an integer, not string"),
    ({"StopTimeout": True}, "StopTimeout must be an integer, not boolean"),
    ({"Tty": "yes"}, "Tty must be true or false, not string"),
    ({"OnBuild": [None]}, r"OnBuild\[0\] must be a string, not null"),
]


@pytest.mark.parametrize("config, message", BAD)
def test_bad_types_are_one_clear_line(config, message):
    doc = json.dumps({"config": config, "rootfs": ROOTFS}).encode()
    with pytest.raises(ImageError, match=message) as e:
        parse_config(doc)  # what load, pull and add_image call first
    assert "\n" not in str(e.value) and str(e.value).startswith("invalid image config: ")


@pytest.mark.parametrize("config", [
    None, {}, {"Cmd": None, "Entrypoint": None, "Env": None, "Labels": None},
    {"Cmd": ["sh", "-c", "x"], "Entrypoint": "/bin/sh -c", "Env": ["A=1", "B"],
     "User": "1000:1000", "WorkingDir": "/w", "Labels": {"k": "v"},
     "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}}, "StopSignal": "SIGINT",
     "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3},
     "ArgsEscaped": True, "Unknown": [1, 2]},
])
def test_good_configs_pass(config):
    check_config(config)


def test_a_string_cmd_is_dockers_one_element_list():
    img = ImageConfig.from_oci({"Cmd": "echo hi", "Entrypoint": "/bin/sh -c"})
    assert img.cmd == ["echo hi"] and img.entrypoint == ["/bin/sh -c"]


def test_an_image_stored_unchecked_is_refused_before_use():
    img = Image(id="sha256:" + "c" * 64, config=ImageConfig(user=5, env=[1]))
    with pytest.raises(ImageError, match=r"^image cccccccccccc: invalid image config: "):
        check_image(img)
    img = Image(id="sha256:" + "c" * 64, config=ImageConfig(exposed_ports=5))
    with pytest.raises(ImageError, match="invalid image config"):
        check_image(img)
    check_image(Image(id="sha256:" + "c" * 64, config=ImageConfig(cmd=["sh"], user="1")))
