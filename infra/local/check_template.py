"""Checks template.yaml and dev against the workspace (run by scripts/test).

- every crate under functions/ has a function resource whose BuildProperties.Binary is the
  crate's binary name, with BuildMethod rust-cargolambda;
- every route a function serves is an HttpApi event of that function: plugins serve
  /plugins/<manifest name> plus their manifest's route_aliases, and POST
  /channels/{retell,vapi}/{connection}/<manifest name>, plus /channels/twilio/… for plugins
  with a function for Twilio's webhooks (the only events without the authorizer: the
  function verifies the platform's signature), the agent builder
  /agents/{channel}, mcp /mcp/{channel}, admin /admin/{proxy+} (any method: the function
  answers 405 itself) and the console's files, GET /console and GET /console/{proxy+}
  (without the authorizer: the function serves only its files there);
- the MCP function may invoke every plugin function and is the only function allowed to
  invoke any (the tool-call event carries a tenant the plugin trusts): no other function's
  statement matches lambda:InvokeFunction, and no managed policy, Role, NotAction or IAM
  resource could grant it unseen; its SWITCHBOARD_PLUGIN_FUNCTIONS names every plugin
  function; plugin functions have HttpApi events only. The one other invoker: EventBridge
  Scheduler's SchedulerRole (trusted only by the stack's schedule group in this account),
  whose SchedulerInvokePolicy invokes exactly the functions of plugins with
  scheduled_functions; only those may create schedules (in that group) and pass the role;
- a plugin's grants on every resource are exactly its manifest's aws_actions;
- every plugin function lets Bedrock Agents invoke it only through one AWS::Lambda::Permission
  with Principal bedrock.amazonaws.com, SourceAccount and SourceArn: !Ref
  BedrockAgentSourceArn, under the BedrockAgents condition; no other explicit permission
  exists;
- the authorizer function is the API's default authorizer;
- every plugin crate is a dependency of cli/ (which is how `dev` serves it);
- the API has a backstop throttle (DefaultRouteSettings) and the functions the platform's
  per-organization limit (SWITCHBOARD_RATE_LIMIT_PER_SECOND);
- one CloudWatch alarm watches the metric of audit entries not stored, under the namespace
  and name the code writes and the stack's own service dimension (SWITCHBOARD_METRIC_SERVICE);
- a plugin function's Timeout is under the idempotency claim window (IN_PROGRESS_WINDOW in
  shared/core/src/idempotency.rs), so a live call's claim is never taken over, and over
  the longest a call takes to answer (ANSWER_BUDGET: CALL_BUDGET in
  shared/core/src/pipeline/mod.rs, BOOKKEEPING_BUDGET and the audit log's WRITE_BUDGET), so
  a call whose dependencies hang answers 503 itself instead of timing out.
Exits non-zero with one line per problem, saying what to add.
"""
import fnmatch
import json
import pathlib
import re
import sys
import tomllib

import yaml

root = pathlib.Path(__file__).resolve().parents[2]


class Loader(yaml.SafeLoader):
    pass


# CloudFormation short tags (!Ref, !GetAtt, !Sub, …) become plain values.
Loader.add_multi_constructor("!", lambda loader, tag, node: loader.construct_scalar(node)
                             if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)
                             if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node))

template = yaml.load((root / "template.yaml").read_text(), Loader=Loader)
resources = template["Resources"]
functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
problems = []
by_binary = {}
# The signed voice-platform routes each plugin binary serves: the only events without the
# authorizer.
# The admin function's console files, served without the authorizer.
CONSOLE_ROUTES = {("GET", "/console"), ("GET", "/console/{proxy+}")}
signed_routes = {}


def signed_of(m):
    """The signed routes a plugin serves: the voice platforms' tool calls, and the
    webhook platforms its functions answer."""
    platforms = {"retell", "vapi"} | {f["webhook"] for f in m["functions"] if f.get("webhook")}
    return {("POST", f"/channels/{p}/{{connection}}/{m['name']}") for p in platforms}


for crate in sorted((root / "functions").iterdir()):
    manifest = crate / "manifest.json"
    if manifest.exists():
        cargo = tomllib.loads((crate / "Cargo.toml").read_text())
        bins = [b["name"] for b in cargo.get("bin", [])] or [cargo["package"]["name"]]
        signed_routes[bins[0]] = signed_of(json.loads(manifest.read_text()))

for name, f in functions.items():
    binary = f.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
    if binary in by_binary:
        problems.append(f"{name} and {by_binary[binary][0]} both build binary '{binary}'")
    by_binary[binary] = (name, f)
    for event_name, e in (f.get("Properties", {}).get("Events", {}) or {}).items():
        if e.get("Type") != "HttpApi":
            # Another event source could hand a plugin a tool-call event naming any tenant.
            if binary in signed_routes:
                problems.append(f"{name}.{event_name}: a plugin function takes HttpApi events only (and the MCP function's and Bedrock's invocations)")
            continue
        props = e.get("Properties", {})
        # An event without ApiId lands on SAM's implicit API, which has no authorizer.
        if props.get("ApiId") != "Api":
            problems.append(f"{name}.{event_name}: must name ApiId: !Ref Api")
        route = (str(props.get("Method", "")).upper(), str(props.get("Path", "")))
        if binary == "admin" and route in CONSOLE_ROUTES:
            if props.get("Auth") != {"Authorizer": "NONE"}:
                problems.append(f"{name}.{event_name}: the console's files ({route[0]} {route[1]}) have Auth: Authorizer: NONE (a browser has no key before the page asks for one)")
        elif route in signed_routes.get(binary, set()):
            if props.get("Auth") != {"Authorizer": "NONE"}:
                problems.append(f"{name}.{event_name}: the signed route {route[0]} {route[1]} has Auth: Authorizer: NONE (the function verifies the signature)")
        elif "Auth" in props:
            problems.append(f"{name}.{event_name}: must not override the API's authorizer")
        elif route[1].startswith("/channels/"):
            problems.append(f"{name}.{event_name}: {route[0]} {route[1]} is not one of this function's signed routes (POST /channels/{{retell,vapi}}/{{connection}}/<plugin>, and twilio for a plugin with a Twilio webhook function)")

for crate in sorted((root / "functions").iterdir()):
    cargo = tomllib.loads((crate / "Cargo.toml").read_text())
    bins = [b["name"] for b in cargo.get("bin", [])] or [cargo["package"]["name"]]
    for binary in bins:
        if binary not in by_binary:
            problems.append(f"functions/{crate.name}: no template resource with BuildProperties.Binary '{binary}'")
            continue
        name, fn = by_binary[binary]
        if fn.get("Metadata", {}).get("BuildMethod") != "rust-cargolambda":
            problems.append(f"{name}: BuildMethod must be rust-cargolambda")
        events = fn.get("Properties", {}).get("Events", {}) or {}
        served = {(e["Properties"]["Method"].upper(), e["Properties"]["Path"])
                  for e in events.values() if e.get("Type") == "HttpApi"}
        expected = set()
        manifest = crate / "manifest.json"
        if manifest.exists():
            m = json.loads(manifest.read_text())
            expected.add(("ANY", "/plugins/" + m["name"]))
            expected |= {("ANY", p) for p in m.get("route_aliases", [])}
            expected |= signed_of(m)
        elif binary == "agent-builder":
            expected.add(("ANY", "/agents/{channel}"))
        elif binary == "admin":
            expected.add(("ANY", "/admin/{proxy+}"))
            expected |= CONSOLE_ROUTES
        elif binary == "mcp":
            expected.add(("ANY", "/mcp/{channel}"))
        for method, path in sorted(expected - served):
            problems.append(f"{name}: serves {method} {path} but the template has no such HttpApi event")

cli = tomllib.loads((root / "cli" / "Cargo.toml").read_text())
cli_paths = {pathlib.Path(d["path"]).name for d in cli.get("dependencies", {}).values()
             if isinstance(d, dict) and "path" in d}
for crate in sorted((root / "functions").iterdir()):
    if (crate / "manifest.json").exists() and crate.name not in cli_paths:
        problems.append(
            f"functions/{crate.name} is a plugin but dev does not serve it: add "
            f'`{crate.name} = {{ path = "../functions/{crate.name}" }}` to [dependencies] in cli/Cargo.toml')


def secs(path, name):
    text = (root / "shared" / "core" / "src" / path).read_text()
    try:
        return int(text.split(f"{name}: Duration = Duration::from_secs(", 1)[1].split(")", 1)[0])
    except (IndexError, ValueError):
        sys.exit(f"shared/core/src/{path}: {name} is no longer `Duration::from_secs(<n>)`; "
                 "update infra/local/check_template.py to read it")


window = secs("idempotency.rs", "IN_PROGRESS_WINDOW")
answer = (secs("pipeline/mod.rs", "CALL_BUDGET") + secs("idempotency.rs", "BOOKKEEPING_BUDGET")
          + secs("audit.rs", "WRITE_BUDGET"))
default_timeout = template.get("Globals", {}).get("Function", {}).get("Timeout", 3)
for crate in sorted((root / "functions").iterdir()):
    if not (crate / "manifest.json").exists():
        continue
    binary = tomllib.loads((crate / "Cargo.toml").read_text())["package"]["name"]
    if binary not in by_binary:
        continue  # reported above
    name, f = by_binary[binary]
    timeout = f["Properties"].get("Timeout", default_timeout)
    if not isinstance(timeout, int) or not answer < timeout < window:
        problems.append(f"{name}: Timeout must be a number of seconds over the longest a call "
                        f"takes to answer ({answer} s) and under the idempotency claim window "
                        f"({window} s), not {timeout!r}")

# Who may invoke the plugin functions: SAM's LambdaInvokePolicy, or any statement whose
# actions match lambda:InvokeFunction (wildcards, any case). A managed policy, a role of the
# template's own, NotAction or an IAM resource could grant it unseen, so none is allowed.
plugin_functions = {by_binary[b][0] for b in signed_routes if b in by_binary}
# Resources that could invoke a function (or grant it) outside a function's own policies.
INVOKERS = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy",
            "AWS::IAM::RolePolicy", "AWS::IAM::UserPolicy", "AWS::IAM::GroupPolicy",
            "AWS::IAM::User", "AWS::IAM::Group",
            "AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine",
            "AWS::Serverless::Connector", "AWS::Scheduler::Schedule", "AWS::Events::Rule")
# The one exception: EventBridge Scheduler's role for plugins that schedule calls of their
# own functions (scheduled_functions in the manifest), trusted by this account's scheduler
# only, whose one policy invokes exactly those plugins' functions.
scheduling = set()
for crate in sorted((root / "functions").iterdir()):
    if (crate / "manifest.json").exists():
        m = json.loads((crate / "manifest.json").read_text())
        binary = tomllib.loads((crate / "Cargo.toml").read_text())["package"]["name"]
        if m.get("scheduled_functions") and binary in by_binary:
            scheduling.add(by_binary[binary][0])


def scheduler_role_ok(r):
    props = r.get("Properties", {})
    if set(props) != {"AssumeRolePolicyDocument"}:
        return "has more than its trust policy (its permissions are SchedulerInvokePolicy)"
    statements = props["AssumeRolePolicyDocument"].get("Statement", [])
    trusted = [st.get("Principal") for st in statements]
    if trusted != [{"Service": "scheduler.amazonaws.com"}]:
        return f"must trust scheduler.amazonaws.com alone, not {trusted!r}"
    condition = statements[0].get("Condition", {})
    if condition.get("StringEquals", {}).get("aws:SourceAccount") != "AWS::AccountId":
        return "must trust only this account's schedules (aws:SourceAccount)"
    if condition.get("ArnEquals", {}).get("aws:SourceArn") != "ScheduleGroup.Arn":
        return "must trust only the stack's schedule group (aws:SourceArn: !GetAtt ScheduleGroup.Arn)"
    return None


def scheduler_policy_ok(r):
    props = r.get("Properties", {})
    if props.get("Roles") != ["SchedulerRole"]:
        return "must attach to SchedulerRole alone"
    statements = props.get("PolicyDocument", {}).get("Statement", [])
    if len(statements) != 1 or statements[0].get("Action") != "lambda:InvokeFunction" \
            or "NotAction" in statements[0] or "NotResource" in statements[0]:
        return "must be one statement allowing lambda:InvokeFunction"
    # !GetAtt X.Arn, as the loader leaves it: "X.Arn".
    targets = {str(t).removesuffix(".Arn") for t in statements[0].get("Resource", [])}
    if targets != scheduling:
        return (f"must invoke exactly the functions of plugins with scheduled_functions "
                f"({', '.join(sorted(scheduling)) or 'none'}), not {', '.join(sorted(targets))}")
    return None


# Creating a schedule and passing the scheduler role is invoking a plugin function with an
# event of one's choosing: only the scheduling plugins may, only in the stack's group.
for name, f in functions.items():
    for policy in f.get("Properties", {}).get("Policies", []) or []:
        for st in (policy.get("Statement", []) if isinstance(policy, dict) else []) or []:
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            lowered = [str(a).lower() for a in actions]
            schedule_ops = [a for a in lowered if a.startswith("scheduler:") or a == "*"]
            passes = any(fnmatch.fnmatchcase("iam:passrole", a) for a in lowered)
            if passes and name not in scheduling and "SchedulerRole" in json.dumps(st.get("Resource")):
                problems.append(f"{name}: may pass the scheduler role; only plugins with scheduled_functions may")
            if passes and name in scheduling and st.get("Resource") != "SchedulerRole.Arn":
                problems.append(f"{name}: iam:PassRole only on SchedulerRole.Arn")
            if schedule_ops and name not in scheduling:
                problems.append(f"{name}: scheduler actions are for plugins with scheduled_functions only")
            if schedule_ops and name in scheduling:
                if sorted(schedule_ops) != ["scheduler:createschedule", "scheduler:deleteschedule"] \
                        or "${ScheduleGroup}/*" not in str(st.get("Resource")):
                    problems.append(f"{name}: scheduler:CreateSchedule and DeleteSchedule only, on the stack's group")

allowed_invokers = {"SchedulerRole": ("AWS::IAM::Role", scheduler_role_ok),
                    "SchedulerInvokePolicy": ("AWS::IAM::Policy", scheduler_policy_ok)}
for name, r in resources.items():
    if name in allowed_invokers and scheduling and r["Type"] == allowed_invokers[name][0]:
        problem = allowed_invokers[name][1](r)
        if problem:
            problems.append(f"{name}: {problem}")
        continue
    if r["Type"] in INVOKERS:
        problems.append(f"{name}: {r['Type']} is not used here (it could invoke a plugin function with "
                        "any event); give a function its permissions in its Policies")
    if "Connectors" in r:
        problems.append(f"{name}: SAM Connectors are not used here (they grant access unseen by this check)")
for name, f in functions.items():
    props = f.get("Properties", {})
    if "Role" in props:
        problems.append(f"{name}: a function gets SAM's role from its Policies, not a Role of its own")
    invokes = set()
    for policy in props.get("Policies", []) or []:
        if not isinstance(policy, dict):
            problems.append(f"{name}: managed policy {policy!r}: state what the function may do as a statement or SAM policy template")
            continue
        if "LambdaInvokePolicy" in policy:
            invokes.add(str(policy["LambdaInvokePolicy"].get("FunctionName")).removesuffix(".Arn"))
        for st in policy.get("Statement", []) or []:
            if st.get("Effect", "Allow") != "Allow":
                continue
            if "NotAction" in st:
                problems.append(f"{name}: NotAction grants everything it does not name; list the actions")
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if any(fnmatch.fnmatchcase(op, str(a).lower())
                   for a in actions for op in ("lambda:invokefunction", "lambda:invokeasync")):
                invokes.add("*")
    if name == by_binary.get("mcp", (None,))[0]:
        for missing in sorted(plugin_functions - invokes):
            problems.append(f"{name}: may not invoke {missing}: add a LambdaInvokePolicy for it (scripts/template)")
        variables = f["Properties"].get("Environment", {}).get("Variables", {})
        named = str(variables.get("SWITCHBOARD_PLUGIN_FUNCTIONS", ""))
        for missing in sorted(p for p in plugin_functions if "${" + p + "}" not in named):
            problems.append(f"{name}: SWITCHBOARD_PLUGIN_FUNCTIONS does not name {missing} (scripts/template)")
    elif invokes:
        problems.append(f"{name}: may invoke functions ({', '.join(sorted(invokes))}); only the MCP function may")

# Explicit invoke permissions: one Bedrock permission per plugin function, and nothing else.
bedrock_for = {}
for name, r in resources.items():
    if r["Type"] != "AWS::Lambda::Permission":
        continue
    props = r.get("Properties", {})
    target = str(props.get("FunctionName", "")).removesuffix(".Arn")
    if props.get("Principal") != "bedrock.amazonaws.com" or target not in plugin_functions:
        problems.append(f"{name}: the only explicit invoke permissions are Bedrock's on plugin functions")
        continue
    if props.get("SourceArn") != "BedrockAgentSourceArn" or props.get("SourceAccount") != "AWS::AccountId" \
            or r.get("Condition") != "BedrockAgents" or props.get("Action") != "lambda:InvokeFunction":
        problems.append(f"{name}: a Bedrock permission needs Action: lambda:InvokeFunction, SourceArn: "
                        "!Ref BedrockAgentSourceArn, SourceAccount: !Ref AWS::AccountId and Condition: BedrockAgents")
    bedrock_for.setdefault(target, []).append(name)
raw = (root / "template.yaml").read_text()
if "SourceArn: !Ref BedrockAgentSourceArn" not in raw:
    problems.append("the Bedrock permissions' SourceArn must be !Ref BedrockAgentSourceArn (the parameter)")
# The loader turns !Not [!Equals [!Ref P, ""]] into [["P", ""]] (tags dropped).
condition = template.get("Conditions", {}).get("BedrockAgents")
if condition != [["BedrockAgentSourceArn", ""]]:
    problems.append(f"Conditions.BedrockAgents must be !Not [!Equals [!Ref BedrockAgentSourceArn, \"\"]], not {condition!r}")
for fn in sorted(plugin_functions):
    if len(bedrock_for.get(fn, [])) != 1:
        problems.append(f"{fn}: needs exactly one Bedrock permission (scripts/template), has {len(bedrock_for.get(fn, []))}")

auth = template["Resources"]["Api"]["Properties"]["Auth"]
default = auth["DefaultAuthorizer"]
arn = auth["Authorizers"][default]["FunctionArn"]
# !GetAtt AuthorizerFunction.Arn loads as the scalar "AuthorizerFunction.Arn".
if "authorizer" not in by_binary or arn != f"{by_binary['authorizer'][0]}.Arn":
    problems.append("the API's default authorizer is not the authorizer function")

# The rate limits: the API's throttle in front, each organization's limit in the functions.
throttle = template["Resources"]["Api"]["Properties"].get("DefaultRouteSettings", {})
for field in ("ThrottlingRateLimit", "ThrottlingBurstLimit"):
    if field not in throttle:
        problems.append(f"the API needs DefaultRouteSettings.{field}: the backstop throttle")
env = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
if "SWITCHBOARD_RATE_LIMIT_PER_SECOND" not in env:
    problems.append("Globals must set SWITCHBOARD_RATE_LIMIT_PER_SECOND (the platform's per-organization limit)")

# Lost audit entries are counted in embedded metric format (telemetry::count_failure); an alarm must
# watch that metric under the names the code writes.
audit_rs = (root / "shared/core/src/audit.rs").read_text()
telemetry_rs = (root / "shared/core/src/telemetry.rs").read_text()
metric = re.search(r'pub const METRIC_NOT_STORED: &str = "([^"]+)"', audit_rs)
namespace = re.search(r'pub const METRIC_NAMESPACE: &str = "([^"]+)"', telemetry_rs)
if not metric or not namespace:
    sys.exit("audit.rs/telemetry.rs: METRIC_NOT_STORED or METRIC_NAMESPACE moved; update infra/local/check_template.py")
alarms = [
    r["Properties"] for r in resources.values()
    if r["Type"] == "AWS::CloudWatch::Alarm"
    and r["Properties"].get("MetricName") == metric.group(1)
    and r["Properties"].get("Namespace") == namespace.group(1)
    and r["Properties"].get("Dimensions") == [{"Name": "service", "Value": "AWS::StackName"}]
]
if len(alarms) != 1:
    problems.append(f"one alarm must watch {namespace.group(1)}/{metric.group(1)} (service: !Ref AWS::StackName), found {len(alarms)}")
if env.get("SWITCHBOARD_METRIC_SERVICE") != "AWS::StackName":
    problems.append("Globals must set SWITCHBOARD_METRIC_SERVICE: !Ref AWS::StackName (the metrics' service dimension the alarm watches)")

# A plugin's grants on every resource ("*") are exactly its manifest's aws_actions, each one
# in the core's list of grantable actions (GRANTABLE_AWS_ACTIONS in manifest.rs).
manifest_rs = (root / "shared/core/src/manifest.rs").read_text()
try:
    listed = manifest_rs.split("pub const GRANTABLE_AWS_ACTIONS", 1)[1].split("];", 1)[0]
    grantable = set(re.findall(r'"([^"]+)"', listed))
except IndexError:
    sys.exit("shared/core/src/manifest.rs: GRANTABLE_AWS_ACTIONS moved; update infra/local/check_template.py")
for crate in sorted((root / "functions").iterdir()):
    if not (crate / "manifest.json").exists():
        continue
    m = json.loads((crate / "manifest.json").read_text())
    binary = tomllib.loads((crate / "Cargo.toml").read_text())["package"]["name"]
    if binary not in by_binary:
        continue
    name, f = by_binary[binary]
    granted = set()
    for policy in f["Properties"].get("Policies", []) or []:
        for st in (policy.get("Statement", []) if isinstance(policy, dict) else []) or []:
            resources = st.get("Resource", [])
            resources = [resources] if isinstance(resources, str) else resources
            # Every resource ("*", or an ARN whose resource part is only a wildcard): the
            # allowlist applies. The stack's own prefixes (secret:<stack>/*) are not this.
            if any(str(r) == "*" or str(r).endswith(":*") for r in resources):
                actions = st.get("Action", [])
                granted.update([actions] if isinstance(actions, str) else actions)
    wanted = set(m.get("aws_actions", []))
    if granted != wanted:
        problems.append(f"{name}: grants {sorted(granted)} on every resource; its manifest's aws_actions are {sorted(wanted)} (scripts/template)")
    for a in sorted(granted | wanted):
        if a not in grantable:
            problems.append(f"{name}: {a} may not be granted to a plugin on every resource "
                            f"(GRANTABLE_AWS_ACTIONS in shared/core/src/manifest.rs)")

for p in problems:
    print(f"check: {p}", file=sys.stderr)
print(f"template check: {len(by_binary)} functions, {len(problems)} problems")
sys.exit(1 if problems else 0)
