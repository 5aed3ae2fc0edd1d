"""cluster.yaml, validated offline with the installed Ray's own autoscaler schema and checks.

Ray does not look inside node_config (EC2's fields): a typo there is only caught by `ray up`.
"""

import copy
import json
import re
from pathlib import Path

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


def test_nothing_open_mlflow_on_localhost_and_ray_wants_its_token(config):
    start = " ".join(config["head_start_ray_commands"])
    assert "mlflow server" in start and "--backend-store-uri sqlite:///" in start
    assert "--host 127.0.0.1" in start and "0.0.0.0" not in start and "HEAD_IP" not in start
    assert "--dashboard-host" not in start  # the dashboard stays on localhost: `ray dashboard`
    for commands in ("head_start_ray_commands", "worker_start_ray_commands"):
        starts = [c for c in config[commands] if "ray start" in c]
        assert starts and all("RAY_AUTH_MODE=token ray start" in c for c in starts), commands
    # The token every node and the laptop share: Ray reads it from ~/.ray/auth_token.
    assert config["file_mounts"].get("~/.ray/auth_token") == "~/.ray/auth_token"


def test_the_clusters_mlflow_store_can_be_fetched(config):
    # rsync_exclude applies to `ray rsync-down` too: excluding *.db kept the store on the head.
    assert not any(".db" in pattern for pattern in config.get("rsync_exclude", []))
    assert ".gitignore" in config.get("rsync_filter", [])  # what is uploaded: not the local store


@pytest.mark.parametrize("node_type", ["head", "gpu_worker"])
def test_both_node_types_pin_a_current_image(config, node_type):
    # Without ImageId Ray 2.60 picks an Ubuntu 18.04 Deep Learning AMI (end of life, old Python).
    image = config["available_node_types"][node_type]["node_config"].get("ImageId", "")
    assert re.fullmatch(r"ami-[0-9a-f]{8,17}", image) or re.fullmatch(
        r"resolve:ssm:/aws/service/deeplearning/ami/x86_64/[\w.-]*ubuntu-(22|24)\.04/latest/ami-id", image
    ), image


def policy(name):
    return json.loads((ROOT / name).read_text())


def allowed(document) -> dict[str, list]:
    """Action -> the statements that allow it."""
    actions = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        for action in [listed] if isinstance(listed, str) else listed:
            actions.setdefault(action, []).append(statement)
    return actions


# What Ray's AWS node provider calls on the head to scale workers, and the IAM action each needs.
EC2_CALLS = {
    "create_instances": "ec2:RunInstances",
    "instances.filter": "ec2:DescribeInstances",
    "describe_instance_types": "ec2:DescribeInstanceTypes",
    "describe_images": "ec2:DescribeImages",
    "create_tags": "ec2:CreateTags",
    "start_instances": "ec2:StartInstances",
    "terminate_instances": "ec2:TerminateInstances",
    "node.terminate": "ec2:TerminateInstances",
    "node.stop": "ec2:StopInstances",
}


def test_the_head_profile_may_run_the_autoscaler(config):
    # cluster.yaml names the head's profile, so Ray creates no role of its own: this one must allow
    # what the autoscaler does, or no GPU worker ever starts and trials wait forever.
    head = allowed(policy("cluster-iam-head-policy.json"))
    # Read, not imported: it needs boto3, which only the laptop that runs `ray up` has.
    source = (Path(ray.__file__).parent / "autoscaler/_private/aws/node_provider.py").read_text()
    called = set(re.findall(r"\.(?:client|ec2|ec2_fail_fast)\.(\w+)\(", source))
    called |= {"instances.filter"} if ".instances.filter(" in source else set()
    called |= {f"node.{verb}" for verb in ("terminate", "stop") if f"node.{verb}()" in source}
    assert called - {"meta"} <= set(EC2_CALLS), f"Ray calls EC2 for more: {called - set(EC2_CALLS)}"
    for call in called - {"meta"}:
        assert EC2_CALLS[call] in head, f"{call} needs {EC2_CALLS[call]}"

    worker_profile = config["available_node_types"]["gpu_worker"]["node_config"]["IamInstanceProfile"]
    assert [s["Resource"] for s in head["iam:PassRole"]] == [f"arn:aws:iam::*:role/{worker_profile['Name']}"]
    ends_workers = head["ec2:TerminateInstances"][0]["Condition"]["StringEquals"]
    assert ends_workers == {"ec2:ResourceTag/ray-cluster-name": config["cluster_name"]}
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject"} <= set(head)  # Tune's storage
    head_profile = config["available_node_types"]["head"]["node_config"]["IamInstanceProfile"]
    assert head_profile["Name"] != worker_profile["Name"]  # workers get no EC2 or IAM rights


def test_the_worker_profile_only_reaches_the_bucket():
    worker = allowed(policy("cluster-iam-worker-policy.json"))
    assert {"s3:ListBucket", "s3:GetObject", "s3:PutObject"} <= set(worker)
    assert all(action.startswith("s3:") for action in worker)


@pytest.mark.parametrize(
    "name", ["cluster.yaml", "cluster-iam-head-policy.json", "cluster-iam-worker-policy.json"]
)
def test_no_credentials_in_the_file(name):
    text = (ROOT / name).read_text()
    assert not re.search(r"(?i)aws_(access_key_id|secret_access_key)|AKIA[0-9A-Z]{16}|password", text)
    assert not re.search(r"\b[0-9a-f]{64}\b", text)  # a Ray token (the file mount is a path)
