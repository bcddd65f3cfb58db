#!/usr/bin/env python3
"""A fault and fidelity proxy between hubform and moto_server.

    proxy.py --upstream http://127.0.0.1:MOTOPORT --port-file FILE

Binds 127.0.0.1 on a free port, writes the port into FILE once it listens
and forwards every request to moto unchanged, except where a rule below
applies.

Always-on rules (AWS behaviour moto 5.2.5 lacks):
  * IAM DeleteGroup / DeleteUser answer DeleteConflict while the entity
    still has members, keys, a login profile, groups or policies.
  * EC2 DeleteSecurityGroup answers DependencyViolation while a
    non-terminated instance uses the group, CannotDelete for `default`.
  * EC2 ModifyInstanceAttribute InstanceType needs a stopped instance;
    Start/Stop/ModifyInstanceAttribute refuse terminated instances.
  * EC2 RunInstances honours ClientToken idempotency.
  * Instances show `pending` / `stopping` in the first N DescribeInstances
    answers after RunInstances / StartInstances / StopInstances.
  * EC2 DeleteKeyPair by KeyPairId alone is translated to the key name
    (key pair creates and deletes take turns, so this stays atomic).
  * EC2 AllocateAddress answers AddressLimitExceeded once the Region holds
    5 Elastic IPs (AWS's default quota; a control lifts or moves it).

AWS faults a test switches on (see "AWS faults" below): bursts of
throttling or 5xx answers per SDK invocation, objects that stay invisible
for a few calls after their create (eventual consistency), and
credentials that expire mid-run.

Every call is recorded for GET /_proxy/requests with its service, action,
status and whether it is about a workshop lock (`lock`, the key pair
`hubform-lock-<workshop>`).
  * The DescribeInstances `client-token` filter (moto answers HTTP 500) is
    applied by the proxy.

Per-test controls are JSON over HTTP on the same port under /_proxy/
(see CONTROL_ROUTES at the bottom of the file).
"""

import argparse
import copy
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

# The proxy only ever talks to moto on loopback; make sure boto3 does not
# route those calls through an HTTP proxy configured in the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

import boto3  # noqa: E402  (after the NO_PROXY fix above)
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

ACCOUNT = "123456789012"
DEFAULT_PENDING_DESCRIBES = 2
# AWS's default quota of Elastic IPs per Region.
DEFAULT_ADDRESS_LIMIT = 5

# Headers that describe one hop, not the message; never forwarded.
HOP_HEADERS = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "content-length",
}

ERROR_NAMESPACES = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}

CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d{8}/([^/,]+)/([^/,]+)/")


def log(msg):
    print(f"proxy: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Requests and answers


class Answer:
    """An HTTP answer: status, header list and body bytes."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def copy(self):
        return Answer(self.status, list(self.headers), self.body)


class Call:
    """One AWS API call as the proxy sees it."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers  # list of (name, value)
        self.body = body
        self.service, self.region = "", ""
        auth = self.header("Authorization") or ""
        m = CREDENTIAL_SCOPE.search(auth)
        if m:
            self.region, self.service = m.group(1), m.group(2)
        # Query protocol: the parameters are the urlencoded form body
        # (the SDKs always POST); accept a query string too.
        self.in_body = method == "POST" and bool(body)
        if self.in_body:
            text = body.decode("utf-8", errors="replace")
        else:
            text = urlsplit(path).query
        self.params = parse_qsl(text, keep_blank_values=True)
        self.action = self.param("Action") or ""

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def param(self, name):
        for k, v in self.params:
            if k == name:
                return v
        return None

    def numbered(self, prefix):
        """Values of PREFIX.1, PREFIX.2, ... (EC2 list parameters)."""
        pat = re.compile(re.escape(prefix) + r"\.(\d+)$")
        found = []
        for k, v in self.params:
            m = pat.match(k)
            if m:
                found.append((int(m.group(1)), v))
        return [v for _, v in sorted(found)]

    def filters(self):
        """[(name, [values])] from Filter.N.Name / Filter.N.Value.M."""
        names, values = {}, {}
        for k, v in self.params:
            m = re.match(r"Filter\.(\d+)\.Name$", k)
            if m:
                names[int(m.group(1))] = v
                continue
            m = re.match(r"Filter\.(\d+)\.Value\.(\d+)$", k)
            if m:
                n, i = int(m.group(1)), int(m.group(2))
                values.setdefault(n, []).append((i, v))
        return [
            (names[n], [v for _, v in sorted(values.get(n, []))])
            for n in sorted(names)
        ]

    def set_params(self, params):
        """Replace the parameters (the signature no longer matches the
        body, which moto does not check)."""
        self.params = params
        if self.in_body:
            self.body = urlencode(params).encode()
        else:
            base = urlsplit(self.path)
            self.path = base.path + "?" + urlencode(params)

    def replace_filters(self, filters):
        kept = [(k, v) for k, v in self.params if not k.startswith("Filter.")]
        for n, (name, vals) in enumerate(filters, 1):
            kept.append((f"Filter.{n}.Name", name))
            for i, v in enumerate(vals, 1):
                kept.append((f"Filter.{n}.Value.{i}", v))
        self.set_params(kept)


def aws_error(service, status, code, message):
    """An error answer shaped like the service's real ones."""
    rid = str(uuid.uuid4())
    code, message = xml_escape(code), xml_escape(message)
    if service in ERROR_NAMESPACES:
        kind = "Sender" if status < 500 else "Receiver"
        body = (
            f'<ErrorResponse xmlns="{ERROR_NAMESPACES[service]}">'
            f"<Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error>"
            f"<RequestId>{rid}</RequestId></ErrorResponse>"
        )
    else:
        # EC2 (and anything else on the query protocol).
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Response><Errors><Error><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></Errors>"
            f"<RequestID>{rid}</RequestID></Response>"
        )
    return Answer(status, [("Content-Type", "text/xml")], body.encode())


def xml_escape(text):
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
    )


# --------------------------------------------------------------------------
# XML helpers for EC2 answers (default namespace, no prefixes)


class Doc:
    """A parsed EC2 answer that can be edited and serialised back with the
    same default namespace (so the SDK's parser sees no difference)."""

    def __init__(self, body):
        self.root = ET.fromstring(body)
        m = re.match(r"\{(.*)\}", self.root.tag)
        self.ns = m.group(1) if m else ""

    def q(self, path):
        if not self.ns:
            return path
        return "/".join(
            p if p in (".", "..", "*") else f"{{{self.ns}}}{p}"
            for p in path.split("/")
        )

    def find(self, el, path):
        return el.find(self.q(path))

    def findall(self, el, path):
        return el.findall(self.q(path))

    def text(self, el, path):
        found = el.find(self.q(path))
        return found.text if found is not None and found.text else ""

    def fragment(self, xml):
        """Parse an XML fragment into this document's namespace."""
        return ET.fromstring(
            xml.replace("<item>", f'<item xmlns="{self.ns}">', 1)
        )

    def bytes(self):
        kw = {"default_namespace": self.ns} if self.ns else {}
        text = ET.tostring(self.root, encoding="unicode", **kw)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()


def instance_items(doc):
    """(reservation item or None, instancesSet, instance item) for every
    instance in a RunInstances or DescribeInstances answer."""
    out = []
    reservations = doc.find(doc.root, "reservationSet")
    if reservations is not None:
        for res in doc.findall(reservations, "item"):
            iset = doc.find(res, "instancesSet")
            if iset is not None:
                for inst in doc.findall(iset, "item"):
                    out.append((res, iset, inst))
    else:
        iset = doc.find(doc.root, "instancesSet")
        if iset is not None:
            for inst in doc.findall(iset, "item"):
                out.append((None, iset, inst))
    return out


def wildcard(pattern):
    """AWS filter wildcards: * any run, ? one character; nothing else."""
    rx = "".join(
        ".*" if c == "*" else "." if c == "?" else re.escape(c)
        for c in pattern
    )
    return re.compile(rx + r"\Z", re.S)


# --------------------------------------------------------------------------
# Proxy state


class Fault:
    def __init__(self, spec):
        self.action = spec["action"]
        self.code = spec["code"]
        self.message = spec.get("message") or f"Injected {spec['code']}"
        self.status = int(spec.get("status", 400))
        self.count = int(spec.get("count", 1))
        self.skip = int(spec.get("skip", 0))
        # forward=true: moto performs the call, the caller sees the error
        # anyway (a lost answer).
        self.forward = bool(spec.get("forward", False))


class Hold:
    def __init__(self, spec):
        self.action = spec["action"]
        self.until = spec["until"]
        self.timeout = float(spec.get("timeout", 20))
        self.outcome = "never_triggered"
        self.released = threading.Event()

    def report(self):
        return {
            "action": self.action,
            "until": self.until,
            "outcome": self.outcome,
        }


class Override:
    """A state the proxy shows instead of moto's for a few describes."""

    def __init__(self, name, code, real, remaining):
        self.name, self.code = name, code
        self.real = real  # the state moto reports meanwhile
        self.remaining = remaining


class TokenEntry:
    def __init__(self, params):
        self.params = params
        self.done = threading.Event()
        self.answer = None


class State:
    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.requests = []
        self.overrides = {}  # instance id -> Override
        self.hidden = {}  # instance id -> describes left
        self.tokens = {}  # (region, client token) -> TokenEntry
        self.shown_image = {}  # instance id -> injected image id
        self.lock_ids = set()  # key pair ids of workshop locks
        self.clients = {}
        self.reset_controls()

    def reset_controls(self):
        with self.lock:
            self.faults = []
            for hold in getattr(self, "holds", []):
                hold.released.set()
            self.holds = []
            self.hide_describes = 0
            self.pending_describes = DEFAULT_PENDING_DESCRIBES
            self.images = {}  # image id -> spec
            self.backing = {}  # (region, injected id) -> moto image id
            self.bursts = []
            self.unseen_after = {}  # kind -> calls an object stays unseen
            self.unseen = {}  # (namespace, id or name) -> [kind, calls left]
            self.address_limit = DEFAULT_ADDRESS_LIMIT
            self.expiry = None  # [action, calls left] until expiry
            self.expired = False

    def client(self, service, region):
        """A boto3 client talking to moto directly (not through us)."""
        region = region or "us-east-1"
        if service in ("iam", "sts"):
            region = "us-east-1"
        key = (service, region)
        with self.lock:
            if key not in self.clients:
                self.clients[key] = boto3.session.Session().client(
                    service,
                    endpoint_url=self.upstream,
                    region_name=region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=Config(retries={"total_max_attempts": 1}),
                )
            return self.clients[key]


STATE = None  # set in main()


# --------------------------------------------------------------------------
# Forwarding


def forward(call):
    up = urlsplit(STATE.upstream)
    conn = HTTPConnection(up.hostname, up.port, timeout=120)
    headers = {
        k: v for k, v in call.headers if k.lower() not in HOP_HEADERS
    }
    headers["Content-Length"] = str(len(call.body))
    headers["Connection"] = "close"
    try:
        conn.request(call.method, call.path, body=call.body, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        return Answer(
            resp.status,
            [
                (k, v)
                for k, v in resp.getheaders()
                if k.lower() not in HOP_HEADERS
            ],
            body,
        )
    except OSError as e:
        return Answer(
            502,
            [("Content-Type", "text/plain")],
            f"proxy: moto unreachable: {e}\n".encode(),
        )
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Controls applied to every call: faults and holds


def take_fault(call):
    with STATE.lock:
        for f in STATE.faults:
            if f.action not in (call.action, "*"):
                continue
            if f.skip > 0:
                f.skip -= 1
                continue
            if f.count > 0:
                f.count -= 1
                return f
    return None


def apply_holds(call):
    """Release holds waiting for this call, then maybe hold this call.
    Returns an error answer if this call's hold timed out."""
    mine = None
    with STATE.lock:
        for h in STATE.holds:
            if h.outcome == "holding" and h.until == call.action:
                h.outcome = "released"
                h.released.set()
        for h in STATE.holds:
            if h.outcome == "never_triggered" and h.action == call.action:
                h.outcome = "holding"
                mine = h
                break
    if mine is None:
        return None
    log(f"holding {call.action} until {mine.until}")
    if mine.released.wait(mine.timeout):
        return None
    with STATE.lock:
        if mine.outcome == "holding":
            mine.outcome = "timed_out"
        if mine.outcome == "released":
            return None
    return aws_error(
        call.service,
        400,
        "HoldTimeout",
        f"{call.action} was held for {mine.timeout:g}s and no "
        f"{mine.until} arrived meanwhile: the calls were not concurrent",
    )


# --------------------------------------------------------------------------
# IAM rules


def iam_conflict(message):
    return aws_error("iam", 409, "DeleteConflict", message)


def iam_delete_group(call):
    iam = STATE.client("iam", call.region)
    name = call.param("GroupName")
    try:
        group = iam.get_group(GroupName=name)
    except ClientError:
        return None  # let moto answer NoSuchEntity
    if group.get("Users"):
        return iam_conflict(
            "Cannot delete entity, must remove users from group first."
        )
    if iam.list_attached_group_policies(GroupName=name)["AttachedPolicies"]:
        return iam_conflict(
            "Cannot delete entity, must detach all policies first."
        )
    if iam.list_group_policies(GroupName=name)["PolicyNames"]:
        return iam_conflict(
            "Cannot delete entity, must delete policies first."
        )
    return None


def iam_delete_user(call):
    iam = STATE.client("iam", call.region)
    name = call.param("UserName")
    try:
        iam.get_user(UserName=name)
    except ClientError:
        return None  # let moto answer NoSuchEntity
    if iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        return iam_conflict(
            "Cannot delete entity, must delete access keys first."
        )
    try:
        iam.get_login_profile(UserName=name)
        return iam_conflict(
            "Cannot delete entity, must delete login profile first."
        )
    except ClientError:
        pass  # NoSuchEntity: no login profile
    if iam.list_groups_for_user(UserName=name)["Groups"]:
        return iam_conflict(
            "Cannot delete entity, must remove user from all groups first."
        )
    if iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]:
        return iam_conflict(
            "Cannot delete entity, must detach all policies first."
        )
    if iam.list_user_policies(UserName=name)["PolicyNames"]:
        return iam_conflict(
            "Cannot delete entity, must delete policies first."
        )
    if iam.list_mfa_devices(UserName=name)["MFADevices"]:
        return iam_conflict(
            "Cannot delete entity, must delete MFA device first."
        )
    return None


# --------------------------------------------------------------------------
# EC2 rules


def ec2_error(code, message, status=400):
    return aws_error("ec2", status, code, message)


def all_instances(ec2, **kw):
    out = []
    for page in ec2.get_paginator("describe_instances").paginate(**kw):
        for res in page["Reservations"]:
            out.extend(res["Instances"])
    return out


def instance_states(call, ids):
    """{id: moto's state name} for the ids moto knows."""
    ec2 = STATE.client("ec2", call.region)
    states = {}
    for iid in ids:
        try:
            for inst in all_instances(ec2, InstanceIds=[iid]):
                states[inst["InstanceId"]] = inst["State"]["Name"]
        except ClientError:
            pass  # unknown id: moto will answer NotFound itself
    return states


def visible_state(iid, real):
    """The state a caller currently sees: the proxy's override if one is
    still showing, else moto's."""
    with STATE.lock:
        o = STATE.overrides.get(iid)
        if o is not None and o.remaining > 0 and o.real == real:
            return o.name
    return real


def ec2_delete_security_group(call):
    ec2 = STATE.client("ec2", call.region)
    gid, name = call.param("GroupId"), call.param("GroupName")
    try:
        if gid:
            groups = ec2.describe_security_groups(GroupIds=[gid])
        elif name:
            groups = ec2.describe_security_groups(GroupNames=[name])
        else:
            return None
    except ClientError:
        return None  # let moto answer InvalidGroup.NotFound
    for group in groups["SecurityGroups"]:
        sg = group["GroupId"]
        if group["GroupName"] == "default":
            return ec2_error(
                "CannotDelete",
                f'the specified group: "{sg}" name: "default" cannot be '
                "deleted by a user",
            )
        for inst in all_instances(ec2):
            if inst["State"]["Name"] == "terminated":
                continue
            used = {g["GroupId"] for g in inst.get("SecurityGroups", [])}
            for eni in inst.get("NetworkInterfaces", []):
                used |= {g["GroupId"] for g in eni.get("Groups", [])}
            if sg in used:
                return ec2_error(
                    "DependencyViolation",
                    f"resource {sg} has a dependent object",
                )
    return None


def ec2_modify_instance_attribute(call):
    iid = call.param("InstanceId")
    states = instance_states(call, [iid])
    if iid not in states:
        return None
    state = visible_state(iid, states[iid])
    if state in ("terminated", "shutting-down"):
        return ec2_error(
            "IncorrectInstanceState",
            f"The instance '{iid}' is not in a state from which it can be "
            "modified.",
        )
    # InstanceType.Value=… or Attribute=instanceType&Value=…
    changes_type = call.param("InstanceType.Value") is not None or (
        call.param("Attribute") == "instanceType"
    )
    if changes_type and state != "stopped":
        return ec2_error(
            "IncorrectInstanceState",
            f"The instance '{iid}' is not in the 'stopped' state.",
        )
    return None


def ec2_start_stop(call):
    ids = call.numbered("InstanceId")
    states = instance_states(call, ids)
    verb = "started" if call.action == "StartInstances" else "stopped"
    for iid in ids:
        if iid not in states:
            continue
        state = visible_state(iid, states[iid])
        # moto brings terminated instances back to life; AWS refuses.
        # AWS also refuses to start an instance that is still stopping.
        if state in ("terminated", "shutting-down") or (
            verb == "started" and state == "stopping"
        ):
            return ec2_error(
                "IncorrectInstanceState",
                f"The instance '{iid}' is not in a state from which it can "
                f"be {verb}.",
            )
    return None


def ec2_delete_key_pair(call):
    # moto answers success to a delete by KeyPairId alone and deletes
    # nothing; AWS deletes. Translate the id into the name.
    kid, name = call.param("KeyPairId"), call.param("KeyName")
    if not kid or name:
        return None
    ec2 = STATE.client("ec2", call.region)
    try:
        # moto 5.2.5 ignores KeyPairIds (it answers every key pair); the
        # key-pair-id filter works.
        pairs = ec2.describe_key_pairs(
            Filters=[{"Name": "key-pair-id", "Values": [kid]}]
        )["KeyPairs"]
    except ClientError:
        return None
    if pairs:
        params = [(k, v) for k, v in call.params if k != "KeyPairId"]
        params.append(("KeyName", pairs[0]["KeyName"]))
        call.set_params(params)
    return None


def run_params(call):
    """The parameters that make two RunInstances calls 'the same'."""
    skip = {"Action", "Version", "ClientToken"}
    return sorted((k, v) for k, v in call.params if k not in skip)


def ec2_run_instances(call, perform):
    """RunInstances with ClientToken idempotency (moto creates a new
    instance every time). PERFORM does the actual call."""
    token = call.param("ClientToken")
    if not token:
        return perform(call)
    key, params = (call.region, token), run_params(call)
    while True:
        with STATE.lock:
            entry = STATE.tokens.get(key)
            owner = entry is None
            if owner:
                entry = STATE.tokens[key] = TokenEntry(params)
        if entry.params != params:
            return ec2_error(
                "IdempotentParameterMismatch",
                f"Client token '{token}' was already used with different "
                "parameters.",
            )
        if owner:
            answer = perform(call)
            with STATE.lock:
                if answer.status == 200:
                    entry.answer = answer.copy()
                else:
                    del STATE.tokens[key]  # a failed launch may be retried
            entry.done.set()
            return answer
        entry.done.wait(120)
        if entry.answer is not None:
            log(f"RunInstances: token {token} seen before, same answer")
            return entry.answer.copy()
        # The first call failed: this one is a fresh attempt.


def image_backing(call, image_id):
    """A moto image that stands in for an injected one at launch."""
    key = (call.region, image_id)
    with STATE.lock:
        if key in STATE.backing:
            return STATE.backing[key]
        spec = STATE.images.get(image_id)
    if spec is None:
        return None
    ec2 = STATE.client("ec2", call.region)
    arch = [{"Name": "architecture", "Values": [spec["architecture"]]}]
    images = ec2.describe_images(Owners=[spec["owner_id"]], Filters=arch)
    if not images["Images"]:
        images = ec2.describe_images(Filters=arch)
    if not images["Images"]:
        return None
    backing = images["Images"][0]["ImageId"]
    with STATE.lock:
        STATE.backing[key] = backing
    return backing


def launch(call):
    """Forward a RunInstances call; launches from an injected image use a
    moto image and show the injected id."""
    shown = call.param("ImageId")
    backing = image_backing(call, shown) if shown else None
    if backing:
        sent = copy.copy(call)
        sent.set_params(
            [(k, backing if k == "ImageId" else v) for k, v in call.params]
        )
        answer = forward(sent)
    else:
        answer = forward(call)
    if answer.status != 200:
        return answer
    doc = Doc(answer.body)
    ids = []
    for _, _, inst in instance_items(doc):
        iid = doc.text(inst, "instanceId")
        ids.append(iid)
        if backing:
            doc.find(inst, "imageId").text = shown
    with STATE.lock:
        for iid in ids:
            if backing:
                STATE.shown_image[iid] = shown
            if STATE.pending_describes > 0:
                STATE.overrides[iid] = Override(
                    "pending", 0, "running", STATE.pending_describes
                )
            if STATE.hide_describes > 0:
                STATE.hidden[iid] = STATE.hide_describes
    if backing:
        answer.body = doc.bytes()
    return answer


def after_start_stop(call, answer):
    if answer.status != 200:
        return answer
    doc = Doc(answer.body)
    iset = doc.find(doc.root, "instancesSet")
    ids = [doc.text(i, "instanceId") for i in doc.findall(iset, "item")]
    with STATE.lock:
        n = STATE.pending_describes
        for iid in ids:
            if call.action == "TerminateInstances" or n <= 0:
                STATE.overrides.pop(iid, None)
            elif call.action == "StartInstances":
                STATE.overrides[iid] = Override("pending", 0, "running", n)
            else:
                STATE.overrides[iid] = Override("stopping", 64, "stopped", n)
    return answer


def ec2_describe_instances(call):
    # Instances still hidden (eventual consistency after RunInstances):
    # naming one of them is an error, like AWS right after a launch.
    named = call.numbered("InstanceId")
    with STATE.lock:
        missing = [i for i in named if STATE.hidden.get(i, 0) > 0]
        for iid in missing:
            STATE.hidden[iid] -= 1
    if missing:
        if len(missing) == 1:
            msg = f"The instance ID '{missing[0]}' does not exist"
        else:
            msg = f"The instance IDs '{', '.join(missing)}' do not exist"
        return ec2_error("InvalidInstanceID.NotFound", msg)

    # moto answers HTTP 500 to the client-token filter: apply it here.
    tokens = None
    filters = call.filters()
    if any(name == "client-token" for name, _ in filters):
        tokens = set()
        for name, vals in filters:
            if name == "client-token":
                tokens |= set(vals)
        sent = copy.copy(call)
        sent.replace_filters([f for f in filters if f[0] != "client-token"])
        answer = forward(sent)
    else:
        answer = forward(call)
    if answer.status != 200:
        return answer

    doc = Doc(answer.body)
    changed = False
    with STATE.lock:
        for res, iset, inst in instance_items(doc):
            iid = doc.text(inst, "instanceId")
            token = doc.text(inst, "clientToken")
            if tokens is not None and token not in tokens:
                iset.remove(inst)
                changed = True
                continue
            if STATE.hidden.get(iid, 0) > 0:
                STATE.hidden[iid] -= 1
                iset.remove(inst)
                changed = True
                continue
            if iid in STATE.shown_image:
                doc.find(inst, "imageId").text = STATE.shown_image[iid]
                changed = True
            o = STATE.overrides.get(iid)
            if o is None:
                continue
            state = doc.find(inst, "instanceState")
            if o.remaining > 0 and doc.text(state, "name") == o.real:
                doc.find(state, "code").text = str(o.code)
                doc.find(state, "name").text = o.name
                o.remaining -= 1
                changed = True
            # Done, or moto moved on (e.g. terminated): stop overriding.
            shown = doc.text(state, "name")
            if o.remaining <= 0 or shown not in (o.name, o.real):
                del STATE.overrides[iid]
        # Drop reservations left without instances.
        reservations = doc.find(doc.root, "reservationSet")
        if reservations is not None:
            for res in doc.findall(reservations, "item"):
                iset = doc.find(res, "instancesSet")
                if iset is not None and len(iset) == 0:
                    reservations.remove(res)
    if changed:
        answer.body = doc.bytes()
    return answer


# --------------------------------------------------------------------------
# Injected images


def image_matches(call, spec):
    ids = call.numbered("ImageId")
    if ids and spec["image_id"] not in ids:
        return False
    owners = call.numbered("Owner")
    if owners:
        ok = spec["owner_id"] in owners or (
            "self" in owners and spec["owner_id"] == ACCOUNT
        )
        if not ok:
            return False
    facts = {
        "name": spec["name"],
        "architecture": spec["architecture"],
        "state": "available",
        "image-id": spec["image_id"],
        "owner-id": spec["owner_id"],
        "root-device-type": "ebs",
        "root-device-name": "/dev/sda1",
        "virtualization-type": "hvm",
        "hypervisor": "xen",
        "image-type": "machine",
        "is-public": "true",
        "description": spec["description"],
    }
    for name, vals in call.filters():
        if name not in facts:
            return False  # an unknown filter (tag:…, owner-alias…): no
        if not any(wildcard(v).match(facts[name]) for v in vals):
            return False
    return True


def image_item(spec):
    snap = "snap-0" + uuid.uuid5(uuid.NAMESPACE_OID, spec["image_id"]).hex[:16]
    e = {k: xml_escape(v) for k, v in spec.items()}
    return (
        "<item><blockDeviceMapping><item><ebs>"
        "<deleteOnTermination>true</deleteOnTermination>"
        f"<snapshotId>{snap}</snapshotId><volumeSize>8</volumeSize>"
        "<volumeType>gp2</volumeType></ebs><deviceName>/dev/sda1</deviceName>"
        "</item></blockDeviceMapping>"
        f"<description>{e['description']}</description>"
        f"<hypervisor>xen</hypervisor><name>{e['name']}</name>"
        "<rootDeviceName>/dev/sda1</rootDeviceName>"
        "<rootDeviceType>ebs</rootDeviceType><tagSet/>"
        "<virtualizationType>hvm</virtualizationType>"
        "<bootMode>uefi-preferred</bootMode>"
        f"<imageId>{e['image_id']}</imageId>"
        f"<imageLocation>{e['owner_id']}/{e['name']}</imageLocation>"
        "<imageState>available</imageState>"
        f"<imageOwnerId>{e['owner_id']}</imageOwnerId>"
        f"<creationDate>{e['creation_date']}</creationDate>"
        "<isPublic>true</isPublic><productCodes/>"
        f"<architecture>{e['architecture']}</architecture>"
        "<imageType>machine</imageType></item>"
    )


def ec2_describe_images(call):
    with STATE.lock:
        injected = dict(STATE.images)
    if not injected:
        return None
    named = call.numbered("ImageId")
    ours = [i for i in named if i in injected]
    if ours and len(ours) == len(named):
        # Only injected ids: moto would answer NotFound; answer ourselves.
        answer = Answer(
            200,
            [("Content-Type", "text/xml")],
            (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<DescribeImagesResponse xmlns="http://ec2.amazonaws.com/'
                'doc/2016-11-15"><requestId>'
                f"{uuid.uuid4()}</requestId><imagesSet/>"
                "</DescribeImagesResponse>"
            ).encode(),
        )
    elif ours:
        # Ask moto only about the ids it knows (renumbered ImageId.N).
        rest = [v for v in named if v not in injected]
        params = [
            (k, v) for k, v in call.params if not k.startswith("ImageId.")
        ]
        params += [(f"ImageId.{n}", v) for n, v in enumerate(rest, 1)]
        sent = copy.copy(call)
        sent.set_params(params)
        answer = forward(sent)
    else:
        answer = forward(call)
    if answer.status != 200:
        return answer
    doc = Doc(answer.body)
    images = doc.find(doc.root, "imagesSet")
    if images is None:
        return answer
    for spec in injected.values():
        if not image_matches(call, spec):
            continue
        for item in doc.findall(images, "item"):
            if doc.text(item, "imageId") == spec["image_id"]:
                images.remove(item)
        images.append(doc.fragment(image_item(spec)))
    answer.body = doc.bytes()
    return answer


# --------------------------------------------------------------------------
# Workshop locks

LOCK_PREFIX = "hubform-lock-"
KEY_PAIR_ID = re.compile(rb"<keyPairId>([^<]+)</keyPairId>")


def is_lock_call(call, key_pair_id, answer):
    """Whether a call is about a workshop lock (the key pair
    `hubform-lock-<workshop>` of hubform_aws::lock), not about a workshop's
    objects; tests leave such calls out of their counts. Call with
    STATE.lock held."""
    if call.service != "ec2":
        return False
    if call.action in KEY_PAIR_WRITES:
        if (call.param("KeyName") or "").startswith(LOCK_PREFIX):
            if key_pair_id:
                STATE.lock_ids.add(key_pair_id)
            m = KEY_PAIR_ID.search(answer.body or b"")
            if call.action == "ImportKeyPair" and m:
                STATE.lock_ids.add(m.group(1).decode())
            return True
        return key_pair_id in STATE.lock_ids
    if call.action == "DescribeKeyPairs":
        return any(
            name == "key-name" and v.startswith(LOCK_PREFIX)
            for name, values in call.filters()
            for v in values
        )
    if call.action == "CreateTags":
        ids = call.numbered("ResourceId")
        return bool(ids) and all(i in STATE.lock_ids for i in ids)
    return False


# --------------------------------------------------------------------------
# AWS faults (issue 5)
#
# The SDKs send `amz-sdk-invocation-id` (one id per call, the same on every
# retry) and `amz-sdk-request: attempt=N; max=M`. A burst fails the first
# attempts of each invocation it catches, so whether a call gets through
# depends on the caller's retries alone, never on timing.

INVOCATION = "amz-sdk-invocation-id"
ATTEMPT = re.compile(r"attempt=(\d+)")
ERROR_CODE = re.compile(rb"<Code>([^<]+)</Code>")


def invocation_of(call):
    """(invocation id, attempt number) as the SDK sent them; a call
    without them is an invocation of its own, attempt 1."""
    invocation = call.header(INVOCATION) or str(uuid.uuid4())
    m = ATTEMPT.search(call.header("amz-sdk-request") or "")
    return invocation, int(m.group(1)) if m else 1


def error_code(answer):
    """The AWS error code of a failed answer, or ""."""
    if answer.status == 200:
        return ""
    m = ERROR_CODE.search(answer.body or b"")
    return m.group(1).decode(errors="replace") if m else ""


class Burst:
    """The first `attempts` attempts of each of the next `invocations`
    matching calls (of `service` and `action`, `*` for any, but none of
    the actions in `except`) fail with `code`."""

    def __init__(self, spec):
        self.service = spec.get("service", "*")
        self.action = spec.get("action", "*")
        self.spared = set(spec.get("except", []))
        self.code = spec["code"]
        self.status = int(spec["status"])
        self.message = spec.get("message") or BURST_MESSAGES.get(
            self.code, f"Injected {self.code}"
        )
        self.attempts = int(spec.get("attempts", 1))
        self.invocations = int(spec.get("invocations", 1))
        self.failed = {}  # invocation id -> attempts failed so far

    def matches(self, call):
        return (
            self.service in ("*", call.service)
            and self.action in ("*", call.action)
            and call.action not in self.spared
        )


BURST_MESSAGES = {
    "RequestLimitExceeded": "Request limit exceeded.",
    "Throttling": "Rate exceeded",
    "InternalError": "An internal error has occurred",
    "Unavailable": "The service is unavailable. Please try again shortly.",
    "ServiceFailure": "Request processing has failed due to some unknown "
    "error, exception or failure.",
    "ServiceUnavailable": "Service is unable to handle request.",
}


def take_burst(call, invocation):
    """The burst that fails this attempt, if any. Call with STATE.lock
    held."""
    for burst in STATE.bursts:
        if not burst.matches(call):
            continue
        failed = burst.failed.get(invocation)
        if failed is None:
            if burst.invocations <= 0:
                continue
            burst.invocations -= 1
            failed = 0
        if failed < burst.attempts:
            burst.failed[invocation] = failed + 1
            return burst
        burst.failed[invocation] = failed
    return None


# Eventual consistency: what each kind of object is called in later calls
# and what AWS answers while it does not show a new one yet.
UNSEEN_KINDS = {
    "instance": ("ec2", "InvalidInstanceID.NotFound", 400),
    "security_group": ("ec2", "InvalidGroup.NotFound", 400),
    "iam_user": ("iam-user", "NoSuchEntity", 404),
    "iam_group": ("iam-group", "NoSuchEntity", 404),
}


def unseen_message(kind, name):
    return {
        "instance": f"The instance ID '{name}' does not exist",
        "security_group": f"The security group '{name}' does not exist",
        "iam_user": f"The user with name {name} cannot be found.",
        "iam_group": f"The group with name {name} cannot be found.",
    }[kind]


def named_objects(call):
    """The (namespace, id or name) keys a call names by parameter; filter
    values do not count (a describe by filter just finds nothing)."""
    if call.service == "iam":
        keys = []
        if call.param("UserName"):
            keys.append(("iam-user", call.param("UserName")))
        if call.param("GroupName"):
            keys.append(("iam-group", call.param("GroupName")))
        return keys
    if call.service == "ec2":
        return [
            ("ec2", v) for k, v in call.params if not k.startswith("Filter.")
        ]
    return []


def still_unseen(call):
    """NotFound for a call naming an object created a moment ago."""
    with STATE.lock:
        for key in named_objects(call):
            entry = STATE.unseen.get(key)
            if entry is None or entry[1] <= 0:
                continue
            entry[1] -= 1
            kind = entry[0]
            _, code, status = UNSEEN_KINDS[kind]
            return aws_error(
                call.service, status, code, unseen_message(kind, key[1])
            )
    return None


GROUP_ID = re.compile(rb"<groupId>([^<]+)</groupId>")


def created_objects(call, answer):
    """[(kind, key)] of the objects a successful create made."""
    if answer.status != 200:
        return []
    if call.service == "ec2" and call.action == "RunInstances":
        doc = Doc(answer.body)
        return [
            ("instance", ("ec2", doc.text(inst, "instanceId")))
            for _, _, inst in instance_items(doc)
        ]
    if call.service == "ec2" and call.action == "CreateSecurityGroup":
        m = GROUP_ID.search(answer.body)
        return [("security_group", ("ec2", m.group(1).decode()))] if m else []
    if call.service == "iam" and call.action == "CreateUser":
        return [("iam_user", ("iam-user", call.param("UserName")))]
    if call.service == "iam" and call.action == "CreateGroup":
        return [("iam_group", ("iam-group", call.param("GroupName")))]
    return []


def note_creates(call, answer):
    with STATE.lock:
        for kind, key in created_objects(call, answer):
            calls = STATE.unseen_after.get(kind, 0)
            if calls > 0 and key not in STATE.unseen:
                STATE.unseen[key] = [kind, calls]


EXPIRED_STATUS = {"ec2": 400}  # IAM and STS answer 403


def expired_credentials(call):
    """ExpiredToken once the credentials have expired; counts the calls
    left before they do."""
    with STATE.lock:
        if not STATE.expired and STATE.expiry is not None:
            action, left = STATE.expiry
            if action in ("*", call.action):
                left -= 1
                STATE.expiry[1] = left
                if left <= 0:
                    # This call still gets through; the next ones do not.
                    STATE.expired, STATE.expiry = True, None
            return None
        if not STATE.expired:
            return None
    return aws_error(
        call.service,
        EXPIRED_STATUS.get(call.service, 403),
        "ExpiredToken",
        "The security token included in the request is expired",
    )


ADDRESS_TURNS = threading.Lock()


def ec2_allocate_address(call):
    """AllocateAddress within the Region's Elastic IP quota. Allocations
    take turns, so two at once cannot both take the last one."""
    with ADDRESS_TURNS:
        with STATE.lock:
            limit = STATE.address_limit
        if limit is not None:
            ec2 = STATE.client("ec2", call.region)
            held = len(ec2.describe_addresses()["Addresses"])
            if held >= limit:
                return ec2_error(
                    "AddressLimitExceeded",
                    "The maximum number of addresses has been reached.",
                )
        return forward(call)


# --------------------------------------------------------------------------
# Dispatch

# Checks that may refuse a call before it reaches moto (None: go on).
CHECKS = {
    ("iam", "DeleteGroup"): iam_delete_group,
    ("iam", "DeleteUser"): iam_delete_user,
    ("ec2", "DeleteSecurityGroup"): ec2_delete_security_group,
    ("ec2", "ModifyInstanceAttribute"): ec2_modify_instance_attribute,
    ("ec2", "StartInstances"): ec2_start_stop,
    ("ec2", "StopInstances"): ec2_start_stop,
    ("ec2", "DeleteKeyPair"): ec2_delete_key_pair,
}


# AWS deletes a key pair by id in one step; the proxy looks the id's name
# up first (ec2_delete_key_pair), so key pair creates and deletes take
# turns here: a delete must never hit a new key pair of the same name made
# between the look-up and the delete.
KEY_PAIR_WRITES = {"DeleteKeyPair", "ImportKeyPair", "CreateKeyPair"}
KEY_PAIR_TURNS = threading.Lock()


def perform(call):
    """Run the always-on rules and the call itself."""
    if call.service == "ec2" and call.action in KEY_PAIR_WRITES:
        with KEY_PAIR_TURNS:
            return perform_in_turn(call)
    return perform_in_turn(call)


def perform_in_turn(call):
    check = CHECKS.get((call.service, call.action))
    if check is not None:
        refusal = check(call)
        if refusal is not None:
            return refusal
    if call.service != "ec2":
        return forward(call)
    if call.action == "RunInstances":
        return ec2_run_instances(call, launch)
    if call.action == "DescribeInstances":
        return ec2_describe_instances(call)
    if call.action == "DescribeImages":
        return ec2_describe_images(call) or forward(call)
    if call.action == "AllocateAddress":
        return ec2_allocate_address(call)
    if call.action in (
        "StartInstances",
        "StopInstances",
        "TerminateInstances",
    ):
        return after_start_stop(call, forward(call))
    if call.action == "ModifyInstanceAttribute" and call.numbered("GroupId"):
        return after_set_groups(call, forward(call))
    return forward(call)


def after_set_groups(call, answer):
    """AWS sets the groups of the instance's primary interface; moto 5.2.5
    only adds the new ones there, so the old group would look in use."""
    if answer.status != 200:
        return answer
    ec2 = STATE.client("ec2", call.region)
    instance_id = call.param("InstanceId")
    groups = call.numbered("GroupId")
    for inst in all_instances(ec2, InstanceIds=[instance_id]):
        for eni in inst.get("NetworkInterfaces", []):
            if eni.get("Attachment", {}).get("DeviceIndex", 0) == 0:
                ec2.modify_network_interface_attribute(
                    NetworkInterfaceId=eni["NetworkInterfaceId"],
                    Groups=groups,
                )
    return answer


def handle_call(call, invocation):
    expired = expired_credentials(call)
    if expired is not None:
        return expired
    with STATE.lock:
        burst = take_burst(call, invocation)
    if burst is not None:
        return aws_error(call.service, burst.status, burst.code, burst.message)
    fault = take_fault(call)
    if fault is not None and not fault.forward:
        return aws_error(call.service, fault.status, fault.code, fault.message)
    unseen = still_unseen(call)
    if unseen is not None:
        return unseen
    held = apply_holds(call)
    if held is not None:
        return held
    answer = perform(call)
    note_creates(call, answer)
    if fault is not None:
        # moto did the work; the caller never hears about it.
        return aws_error(call.service, fault.status, fault.code, fault.message)
    return answer


# --------------------------------------------------------------------------
# Control API (/_proxy/…)


class ControlError(Exception):
    pass


def need(spec, required, optional=()):
    if not isinstance(spec, dict):
        raise ControlError("expected a JSON object")
    unknown = set(spec) - set(required) - set(optional)
    if unknown:
        raise ControlError(f"unknown keys: {sorted(unknown)}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ControlError(f"missing keys: {missing}")


def ctl_fault(spec):
    need(
        spec,
        ["action", "code"],
        ["message", "status", "count", "skip", "forward"],
    )
    with STATE.lock:
        STATE.faults.append(Fault(spec))


def ctl_hold(spec):
    need(spec, ["action", "until"], ["timeout"])
    with STATE.lock:
        STATE.holds.append(Hold(spec))


def ctl_holds(_):
    with STATE.lock:
        return [h.report() for h in STATE.holds]


def ctl_hide(spec):
    need(spec, ["describes"])
    with STATE.lock:
        STATE.hide_describes = int(spec["describes"])


def ctl_pending(spec):
    need(spec, ["describes"])
    with STATE.lock:
        STATE.pending_describes = int(spec["describes"])


def ctl_image(spec):
    need(
        spec,
        ["image_id", "name"],
        ["owner_id", "architecture", "creation_date", "description"],
    )
    full = {
        "image_id": spec["image_id"],
        "name": spec["name"],
        "owner_id": spec.get("owner_id", "099720109477"),
        "architecture": spec.get("architecture", "x86_64"),
        "creation_date": spec.get("creation_date")
        or time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "description": spec.get("description", spec["name"]),
    }
    with STATE.lock:
        STATE.images[full["image_id"]] = full


def ctl_burst(spec):
    need(
        spec,
        ["code", "status"],
        ["service", "action", "except", "message", "attempts", "invocations"],
    )
    with STATE.lock:
        STATE.bursts.append(Burst(spec))


def ctl_unseen(spec):
    need(spec, ["kind", "calls"])
    if spec["kind"] not in UNSEEN_KINDS:
        raise ControlError(
            f"unknown kind {spec['kind']!r}; one of {sorted(UNSEEN_KINDS)}"
        )
    with STATE.lock:
        STATE.unseen_after[spec["kind"]] = int(spec["calls"])


def ctl_address_limit(spec):
    need(spec, ["limit"])
    limit = spec["limit"]
    with STATE.lock:
        STATE.address_limit = None if limit is None else int(limit)


def ctl_expire(spec):
    need(spec, ["after"], ["action"])
    after = int(spec["after"])
    with STATE.lock:
        STATE.expired = after <= 0
        STATE.expiry = None if after <= 0 else [spec.get("action", "*"), after]


def ctl_refresh(_):
    with STATE.lock:
        STATE.expired, STATE.expiry = False, None


def ctl_requests(_):
    with STATE.lock:
        return [dict(r) for r in STATE.requests]


def ctl_requests_reset(_):
    with STATE.lock:
        STATE.requests.clear()


def ctl_reset(_):
    STATE.reset_controls()


def ctl_health(_):
    return {"ok": True}


CONTROL_ROUTES = {
    ("POST", "/_proxy/fault"): ctl_fault,
    ("POST", "/_proxy/hold"): ctl_hold,
    ("GET", "/_proxy/holds"): ctl_holds,
    ("POST", "/_proxy/hide"): ctl_hide,
    ("POST", "/_proxy/pending"): ctl_pending,
    ("POST", "/_proxy/image"): ctl_image,
    ("POST", "/_proxy/burst"): ctl_burst,
    ("POST", "/_proxy/unseen"): ctl_unseen,
    ("POST", "/_proxy/address-limit"): ctl_address_limit,
    ("POST", "/_proxy/expire"): ctl_expire,
    ("POST", "/_proxy/refresh"): ctl_refresh,
    ("GET", "/_proxy/requests"): ctl_requests,
    ("POST", "/_proxy/requests/reset"): ctl_requests_reset,
    ("POST", "/_proxy/reset"): ctl_reset,
    ("GET", "/_proxy/health"): ctl_health,
}


# --------------------------------------------------------------------------
# HTTP server


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK expects
    # An answer's headers and body go out in two writes: with Nagle's
    # algorithm the body would wait for the client's delayed ACK, about
    # 40 ms on every request of a kept-alive connection.
    disable_nagle_algorithm = True

    def do_any(self):
        body = self.read_body()
        if body is None:
            return
        path = urlsplit(self.path).path
        if path.startswith("/_proxy/"):
            self.control(path, body)
            return
        call = Call(self.command, self.path, list(self.headers.items()), body)
        key_pair_id = call.param("KeyPairId")  # before a rule rewrites it
        invocation, attempt = invocation_of(call)
        record = None
        if call.service:
            record = {
                "service": call.service,
                "action": call.action,
                "status": 0,
                "lock": False,
                "invocation": invocation,
                "attempt": attempt,
                "code": "",
            }
            with STATE.lock:
                STATE.requests.append(record)
        try:
            if call.service:
                answer = handle_call(call, invocation)
            else:
                answer = forward(call)
        except Exception as e:  # a bug in a rule: say so, loudly
            log(f"error handling {call.service} {call.action}: {e!r}")
            answer = aws_error(
                call.service, 500, "ProxyError", f"proxy failed: {e!r}"
            )
        if record is not None:
            with STATE.lock:
                record["status"] = answer.status
                record["code"] = error_code(answer)
                record["lock"] = is_lock_call(call, key_pair_id, answer)
            code = f" {record['code']}" if record["code"] else ""
            log(
                f"{call.service} {call.action} {answer.status}{code} "
                f"(attempt {attempt})"
            )
        self.send(answer)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_any

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def control(self, path, body):
        route = CONTROL_ROUTES.get((self.command, path))
        if route is None:
            self.send_json(404, {"error": f"no control {self.command} {path}"})
            return
        try:
            spec = json.loads(body) if body.strip() else {}
            result = route(spec)
        except (ControlError, ValueError, KeyError, TypeError) as e:
            self.send_json(400, {"error": str(e)})
            return
        self.send_json(200, {"ok": True} if result is None else result)

    def send_json(self, status, value):
        body = (json.dumps(value) + "\n").encode()
        self.send(Answer(status, [("Content-Type", "application/json")], body))

    def send(self, answer):
        self.send_response_only(answer.status)
        for k, v in answer.headers:
            if k.lower() not in HOP_HEADERS:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)
        self.wfile.flush()

    def log_message(self, format, *args):
        pass  # one line per AWS call is logged in do_any instead


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def watch_parent(parent, moto_pid):
    """Exit (and stop moto) once the process that started us is gone, so
    a test binary killed without unwinding leaves nothing behind."""
    while os.getppid() == parent:
        time.sleep(0.5)
    if moto_pid:
        try:
            with open(f"/proc/{moto_pid}/cmdline", "rb") as f:
                if b"moto_server" in f.read():  # not a recycled pid
                    os.kill(moto_pid, signal.SIGTERM)
        except OSError:
            pass
    os._exit(0)


def main():
    global STATE
    parent = os.getppid()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="moto_server URL")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="exit when the parent process ends",
    )
    ap.add_argument(
        "--moto-pid", type=int, help="with --exit-with-parent: stop it too"
    )
    args = ap.parse_args()
    if args.exit_with_parent:
        threading.Thread(
            target=watch_parent, args=(parent, args.moto_pid), daemon=True
        ).start()
    host = urlsplit(args.upstream).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"proxy: refusing a non-loopback upstream {args.upstream}")
    STATE = State(args.upstream)
    server = Server(("127.0.0.1", args.port), Handler)
    port = server.server_address[1]
    # Write the port atomically: readers never see a partial file.
    tmp = f"{args.port_file}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    log(f"listening on 127.0.0.1:{port}, upstream {args.upstream}")
    # Make the boto3 clients the rules need now rather than on first use.
    threading.Thread(
        target=lambda: [STATE.client(s, "ap-south-1") for s in ("ec2", "iam")],
        daemon=True,
    ).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
