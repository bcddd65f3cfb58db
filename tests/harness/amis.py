#!/usr/bin/env python3
"""Build the AMI catalogue that moto_server reads from MOTO_AMIS_PATH.

moto reads the file once at start-up and it *replaces* its built-in image
list (and the per-region "latest" lists), so we start from moto's own
entries in ec2/resources/amis.json.gz and append Canonical Ubuntu 22.04
(jammy) images, which moto 5.2.5 does not ship at all.

The jammy entries are chosen so that "pick the newest matching image" logic
can be tested: the correct answer is JAMMY_AMD64_NEWEST; every other entry
is a decoy that a sloppy lookup (sorting by name, ignoring the owner, or
ignoring the architecture) would pick instead.

Usage: amis.py OUTPUT_FILE   (writes the JSON list, prints nothing)
"""

import gzip
import json
import os
import sys

import moto

CANONICAL = "099720109477"
# An owner that is not Canonical, publishing an image under Canonical's name.
IMPOSTOR = "999988887777"

AMD64 = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-"
ARM64 = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-"

# Fixed ids (ami- + 17 hex digits, like real ids) so tests can name them.
JAMMY_AMD64_NEWEST = "ami-0a3c9e71d24f5b86e"
JAMMY_AMD64_OLDER = "ami-04e1b7c2f9a3d5618"
JAMMY_AMD64_LATER_NAME_OLDER_DATE = "ami-07d25f8e1a9c4b3d0"
JAMMY_AMD64_OTHER_OWNER = "ami-0c61a4d8e7f2b9035"
JAMMY_ARM64_MISNAMED = "ami-05f8b2d6c3e1a7940"
JAMMY_ARM64_NEWEST = "ami-0e9d4a6b1c7f3e582"
# Ubuntu 24.04 for the smaller example spec.
NOBLE = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-"
NOBLE_AMD64_NEWEST = "ami-0b7e3c1d9f2a46058"


def jammy(ami_id, name, owner, arch, created, description):
    """One catalogue entry with the same keys as moto's own entries."""
    return {
        "ami_id": ami_id,
        "state": "available",
        "public": True,
        "owner_id": owner,
        "image_location": f"{owner}/{name}",
        "sriov": "simple",
        "root_device_type": "ebs",
        "root_device_name": "/dev/sda1",
        "description": description,
        "image_type": "machine",
        "platform": None,
        "architecture": arch,
        "name": name,
        "virtualization_type": "hvm",
        "hypervisor": "xen",
        # moto parses this with botocore's timestamp parser.
        "creation_date": f"{created}T00:00:00.000Z",
    }


def jammy_entries():
    canonical = (
        "Canonical, Ubuntu, 22.04 LTS, {arch} jammy image build on {day}"
    )
    return [
        # The right answer for amd64.
        jammy(
            JAMMY_AMD64_NEWEST,
            AMD64 + "20261120",
            CANONICAL,
            "x86_64",
            "2026-11-20",
            canonical.format(arch="amd64", day="2026-11-20"),
        ),
        # Decoy: simply an older build.
        jammy(
            JAMMY_AMD64_OLDER,
            AMD64 + "20260901",
            CANONICAL,
            "x86_64",
            "2026-09-01",
            canonical.format(arch="amd64", day="2026-09-01"),
        ),
        # Decoy: sorts last by name, but was created long before the newest.
        jammy(
            JAMMY_AMD64_LATER_NAME_OLDER_DATE,
            AMD64 + "20270115",
            CANONICAL,
            "x86_64",
            "2025-01-15",
            canonical.format(arch="amd64", day="2025-01-15"),
        ),
        # Decoy: Canonical's name, another owner, created later.
        jammy(
            JAMMY_AMD64_OTHER_OWNER,
            AMD64 + "20261120",
            IMPOSTOR,
            "x86_64",
            "2026-12-01",
            "Ubuntu 22.04 LTS (community copy)",
        ),
        # Decoy: an arm64 image published under the amd64 name pattern,
        # newer than the right answer; only the architecture filter
        # keeps it out.
        jammy(
            JAMMY_ARM64_MISNAMED,
            AMD64 + "20261130",
            CANONICAL,
            "arm64",
            "2026-11-30",
            canonical.format(arch="arm64", day="2026-11-30"),
        ),
        # The right answer for arm64, under its proper name.
        jammy(
            JAMMY_ARM64_NEWEST,
            ARM64 + "20261120",
            CANONICAL,
            "arm64",
            "2026-11-20",
            canonical.format(arch="arm64", day="2026-11-20"),
        ),
    ]


def noble_entries():
    return [
        jammy(
            NOBLE_AMD64_NEWEST,
            NOBLE + "20261115",
            CANONICAL,
            "x86_64",
            "2026-11-15",
            "Canonical, Ubuntu, 24.04 LTS, amd64 noble image build on "
            "2026-11-15",
        )
    ]


def moto_entries():
    """moto's built-in catalogue, as shipped in the installed package."""
    path = os.path.join(
        os.path.dirname(moto.__file__), "ec2", "resources", "amis.json.gz"
    )
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: amis.py OUTPUT_FILE")
    out = sys.argv[1]
    entries = moto_entries() + jammy_entries() + noble_entries()
    ids = [e["ami_id"] for e in entries]
    if len(ids) != len(set(ids)):
        sys.exit("amis.py: duplicate image ids in the catalogue")
    tmp = f"{out}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(entries, f, indent=1)
        f.write("\n")
    # Atomic replace: a moto starting concurrently never sees half a file.
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
