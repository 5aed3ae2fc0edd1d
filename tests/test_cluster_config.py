"""cluster.yaml, validated offline with the installed Ray's own autoscaler schema and checks.

Ray does not look inside node_config (EC2's fields): a typo there is only caught by `ray up`.
"""

import copy
import re

import pytest
import ray
import yaml
from jsonschema import ValidationError
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import ROOT

pytestmark = pytest.mark.distributed


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def validated(config):
    prepared = prepare_config(copy.deepcopy(config))  # fills in the AWS defaults as `ray up` does
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_rays_schema_and_checks(config):
    prepared = validated(config)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c.update(max_worker=3),  # a typo of max_workers
        lambda c: c["available_node_types"]["gpu_worker"].update(resources={"GPU": 0.5}),
        lambda c: c.update(head_node_type="ray.head.default"),  # renamed in one place only
    ],
    ids=["unknown-key", "fractional-node-resource", "head-type-not-defined"],
)
def test_a_broken_config_fails_validation(config, break_it):
    break_it(config)
    with pytest.raises((ValidationError, ValueError)):
        validated(config)


def test_gpu_workers_scale_from_zero_and_idle_ones_go(config):
    workers = config["available_node_types"]["gpu_worker"]
    assert workers["min_workers"] == 0 and workers["resources"]["GPU"] == 1
    assert config["idle_timeout_minutes"] <= 10
    assert config["available_node_types"]["head"]["resources"].get("GPU", 0) == 0


def test_nodes_install_the_ray_that_the_driver_runs(config):
    # Without explicit setup_commands, Ray's default would install a nightly wheel.
    pins = re.findall(r"ray\[[^\]]*\]==([\w.]+)", " ".join(config["setup_commands"]))
    assert pins == [ray.__version__]
    assert any("whl/cu" in c for c in config["worker_setup_commands"])  # a CUDA torch on GPU nodes
    assert any("whl/cpu" in c for c in config["head_setup_commands"])


def test_mlflow_server_listens_on_the_private_address_with_a_database(config):
    start = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in start and "--backend-store-uri sqlite:///" in start
    assert '--host "$HEAD_IP"' in start and "0.0.0.0" not in start
    assert "--dashboard-host" not in start  # the dashboard stays on localhost: `ray dashboard`


def test_no_credentials_in_the_file():
    text = (ROOT / "cluster.yaml").read_text()
    assert not re.search(r"(?i)aws_(access_key_id|secret_access_key)|AKIA[0-9A-Z]{16}|password", text)
