"""The specs the bench runs: the example workshop without its host layer,
and a fleet of AWS-only workshops that can share one account."""

from pathlib import Path

from world import ROOT

EXAMPLE = ROOT / "specs/groundwater-workshop.yaml"


def example_aws_part():
    """The example's text without the server's `tljh:` block and the
    comment lines right above it: its AWS part."""
    lines = EXAMPLE.read_text().splitlines()
    start = lines.index("    tljh:")
    first = start
    while first > 0 and lines[first - 1].startswith("    #"):
        first -= 1
    end = start + 1
    while end < len(lines) and (
        not lines[end].strip() or lines[end].startswith("     ")
    ):
        end += 1
    return "\n".join(lines[:first] + lines[end:]) + "\n"


# One workshop of the fleet: the example's AWS part with names of its own
# (IAM names are account-wide, key pair and group names Region-wide).
FLEET_SPEC = """\
workshop: fleet-{n:02}
region: ap-south-1

iam:
  groups:
    EC2Admins-{n:02}:
      policies: [AdministratorAccess]
  users:
    ec2-admin-{n:02}:
      groups: [EC2Admins-{n:02}]
      access_key_file: keys/ec2-admin-{n:02}.credentials

key_pairs:
  fleet-{n:02}:
    private_key_file: keys/fleet-{n:02}.pem

security_groups:
  fleet-{n:02}-sg:
    description: Security group for JupyterHub workshop {n:02}
    ingress:
      - {{ ports: [22, 80, 443], from: 0.0.0.0/0 }}

images:
  ubuntu-jammy:
    owner: "099720109477"
    name: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*
    architecture: x86_64

servers:
  hub:
    name: fleet-{n:02}-hub
    type: t3.xlarge
    image: ubuntu-jammy
    key_pair: fleet-{n:02}
    security_groups: [fleet-{n:02}-sg]
    root_volume: {{ device: /dev/sda1, size_gb: 20, type: gp3 }}
    elastic_ip: true
    state: running
"""


def write_fleet(folder, count):
    """Writes `count` fleet specs into `folder`; their paths in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n in range(1, count + 1):
        path = folder / f"fleet-{n:02}.yaml"
        path.write_text(FLEET_SPEC.format(n=n))
        paths.append(path)
    return paths
