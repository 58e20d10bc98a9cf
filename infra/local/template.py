"""Writes (or checks) template.yaml's plugin functions from the plugin crates.

Every crate under functions/ that holds a manifest.json is a plugin: it gets a function
resource (its binary, the plugin policy, an HttpApi event for /plugins/<manifest name>, one
per route alias in the manifest, and the signed routes
/channels/{retell,vapi}/{connection}/<manifest name>, plus /channels/twilio/… when one of its
functions answers Twilio's webhooks, which have no authorizer because the function verifies
the platform's signature) and a log group. The MCP function
is written here too, since it names every plugin function: it invokes them (its role is the
only one allowed to) and finds them through SWITCHBOARD_PLUGIN_FUNCTIONS. Plugins whose
manifests list scheduled_functions get EventBridge Scheduler: the stack's schedule group, the
role the scheduler invokes them as (which may invoke only those functions), and the right to
create and delete schedules in that group and pass that role. A manifest's aws_actions
(e.g. translate:TranslateText) are granted to its function as they are. All of it sits
between the BEGIN/END markers in template.yaml; everything else in the template is written
by hand.

    python3 infra/local/template.py          # rewrite the block (scripts/template)
    python3 infra/local/template.py --check  # exit 1, naming what differs (scripts/test)
"""
import json
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[2]
BEGIN = "  # BEGIN plugin functions: written by scripts/template from functions/*/manifest.json; edit those, not this"
END = "  # END plugin functions"


def plugins(root=ROOT):
    """(crate dir, binary, manifest) of every plugin crate, in directory order."""
    out = []
    for crate in sorted((root / "functions").iterdir()):
        manifest = crate / "manifest.json"
        cargo = crate / "Cargo.toml"
        if not manifest.exists() or not cargo.exists():
            continue
        toml = tomllib.loads(cargo.read_text())
        bins = [b["name"] for b in toml.get("bin", [])] or [toml["package"]["name"]]
        out.append((crate.name, bins[0], json.loads(manifest.read_text())))
    return out


# The voice platforms whose signed tool calls every plugin function takes (VoicePlatform in
# shared/core/src/ids.rs); a webhook platform (twilio) reaches only the plugins with a
# function for its webhooks.
SIGNED_PLATFORMS = ["retell", "vapi"]


def signed_platforms(manifest):
    hooks = sorted({f["webhook"] for f in manifest["functions"] if f.get("webhook")})
    return SIGNED_PLATFORMS + [p for p in hooks if p not in SIGNED_PLATFORMS]


def signed_path(platform, plugin):
    return f"/channels/{platform}/{{connection}}/{plugin}"


def logical_id(name):
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def schedules(manifest):
    return bool(manifest.get("scheduled_functions"))


def webhooks(manifest):
    return any(f.get("webhook") for f in manifest["functions"])


def block(root=ROOT):
    lines = [BEGIN, ""]
    for crate, binary, manifest in plugins(root):
        fid = logical_id(crate)
        variables = []
        if schedules(manifest):
            variables += [
                "          SWITCHBOARD_SCHEDULE_GROUP: !Ref ScheduleGroup",
                "          SWITCHBOARD_SCHEDULER_ROLE_ARN: !GetAtt SchedulerRole.Arn",
            ]
        if webhooks(manifest):
            variables += [
                "          # Twilio signs the URL it was given: behind a custom domain, this one.",
                "          SWITCHBOARD_PUBLIC_URL: !Ref PublicUrl",
            ]
        scheduler_env = (["      Environment:", "        Variables:"] if variables else []) + variables + ([
            "      # Scheduled calls arrive asynchronously: a failed one is delivered again, twice",
            "      # at most and within the hour (a reminder hours late is worse than none).",
            "      EventInvokeConfig:",
            "        MaximumEventAgeInSeconds: 3600",
            "        MaximumRetryAttempts: 2",
        ] if schedules(manifest) else [])
        routes = [("Plugin", "/plugins/" + manifest["name"])]
        routes += [(f"Alias{i + 1}", path) for i, path in enumerate(manifest.get("route_aliases", []))]
        lines += [
            f"  {fid}Function:",
            "    Type: AWS::Serverless::Function",
            "    Metadata:",
            "      BuildMethod: rust-cargolambda",
            "      BuildProperties:",
            f"        Binary: {binary}",
            "    Properties:",
            f"      Description: \"{manifest['display_name']} plugin ({manifest['name']} {manifest['version']})\"",
            "      LoggingConfig:",
            "        LogFormat: JSON",
            f"        LogGroup: !Ref {fid}LogGroup",
            "      CodeUri: .",
            *scheduler_env,
            "      Policies:",
            "        # Registry reads by key: the org's items (instance, profile, channel),",
            "        # connections (signed routes) and Bedrock agent mappings (action groups). Not",
            "        # the API keys (KEY#…): no plugin needs them, and neither the signed routes nor",
            "        # Bedrock's events have an authorizer in front.",
            "        - Statement:",
            "            - Effect: Allow",
            "              Action: dynamodb:GetItem",
            "              Resource: !GetAtt RegistryTable.Arn",
            "              Condition:",
            "                ForAllValues:StringLike:",
            "                  dynamodb:LeadingKeys:",
            "                    - \"ORG#*\"",
            "                    - \"CONN#*\"",
            "                    - \"BAGENT#*\"",
            "        - DynamoDBCrudPolicy:",
            "            TableName: !Ref DataTable",
        ]
        # An empty list allows every adapter type (the admin API's rule); none means dynamodb.
        adapters = manifest.get("data_adapters", ["dynamodb"])
        if not adapters or "api" in adapters:
            lines += [
                "        # External data adapters read their credentials, and the api adapter writes",
                "        # back the refresh tokens OAuth2 providers rotate; only under this stack's prefix.",
                "        - Statement:",
                "            - Effect: Allow",
                "              Action:",
                "                - secretsmanager:GetSecretValue",
                "                - secretsmanager:PutSecretValue",
            ]
        else:
            lines += [
                "        # External data adapters read their credentials; only under this stack's prefix.",
                "        - Statement:",
                "            - Effect: Allow",
                "              Action: secretsmanager:GetSecretValue",
            ]
        lines += [
            "              Resource: !Sub arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}/*",
        ]
        if manifest.get("aws_actions"):
            lines += [
                "        # The AWS actions its own code calls (the manifest's aws_actions); they",
                "        # take no resource-level permissions.",
                "        - Statement:",
                "            - Effect: Allow",
                "              Action:",
                *[f"                - {a}" for a in manifest["aws_actions"]],
                "              Resource: \"*\"",
            ]
        if schedules(manifest):
            lines += [
                "        # Its scheduled calls: one-time schedules in the stack's group, run as the",
                "        # scheduler role (which may invoke only the functions that schedule).",
                "        - Statement:",
                "            - Effect: Allow",
                "              Action: [scheduler:CreateSchedule, scheduler:DeleteSchedule]",
                "              Resource: !Sub arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${ScheduleGroup}/*",
                "            - Effect: Allow",
                "              Action: iam:PassRole",
                "              Resource: !GetAtt SchedulerRole.Arn",
                "              Condition:",
                "                StringEquals:",
                "                  iam:PassedToService: scheduler.amazonaws.com",
            ]
        lines += [
            "      Events:",
        ]
        for event, path in routes:
            lines += [
                f"        {event}:",
                "          Type: HttpApi",
                "          Properties:",
                "            ApiId: !Ref Api",
                "            Method: ANY",
                f"            Path: {path}",
            ]
        for platform in signed_platforms(manifest):
            lines += [
                f"        {logical_id(platform)}:",
                "          Type: HttpApi",
                "          Properties:",
                "            ApiId: !Ref Api",
                "            Method: POST",
                f"            Path: {signed_path(platform, manifest['name'])}",
                "            # The signature over the body authenticates; an authorizer never sees it.",
                "            Auth:",
                "              Authorizer: NONE",
            ]
        lines += [
            "",
            f"  {fid}BedrockPermission:",
            "    Type: AWS::Lambda::Permission",
            "    Condition: BedrockAgents",
            "    Properties:",
            "      Action: lambda:InvokeFunction",
            f"      FunctionName: !GetAtt {fid}Function.Arn",
            "      Principal: bedrock.amazonaws.com",
            "      SourceAccount: !Ref AWS::AccountId",
            "      # Only the operator's agents; each alias still needs its mapping to an org.",
            "      SourceArn: !Ref BedrockAgentSourceArn",
            "",
            f"  {fid}LogGroup:",
            "    Type: AWS::Logs::LogGroup",
            "    Properties:",
            f"      LogGroupName: !Sub /switchboard/${{AWS::StackName}}/{crate}",
            "      RetentionInDays: !Ref LogRetentionDays",
            "",
        ]
    lines += scheduler_block(root)
    lines += mcp_block(root)
    lines.append(END)
    return "\n".join(lines)


def scheduler_block(root=ROOT):
    """The schedule group and the role EventBridge Scheduler invokes the scheduling plugins
    as: trusted by the scheduler of this account only, allowed to invoke only them."""
    found = [c for c, _, m in plugins(root) if schedules(m)]
    if not found:
        return []
    lines = [
        "  ScheduleGroup:",
        "    Type: AWS::Scheduler::ScheduleGroup",
        "",
        "  SchedulerRole:",
        "    Type: AWS::IAM::Role",
        "    Properties:",
        "      AssumeRolePolicyDocument:",
        "        Version: \"2012-10-17\"",
        "        Statement:",
        "          - Effect: Allow",
        "            Principal:",
        "              Service: scheduler.amazonaws.com",
        "            Action: sts:AssumeRole",
        "            Condition:",
        "              StringEquals:",
        "                aws:SourceAccount: !Ref AWS::AccountId",
        "              ArnEquals:",
        "                aws:SourceArn: !GetAtt ScheduleGroup.Arn",
        "",
        "  # A policy of its own, not the role's: the functions name the role, so the role",
        "  # cannot name them.",
        "  SchedulerInvokePolicy:",
        "    Type: AWS::IAM::Policy",
        "    Properties:",
        "      PolicyName: invoke-scheduling-plugins",
        "      Roles: [!Ref SchedulerRole]",
        "      PolicyDocument:",
        "        Version: \"2012-10-17\"",
        "        Statement:",
        "          - Effect: Allow",
        "            Action: lambda:InvokeFunction",
        "            Resource:",
    ]
    lines += [f"              - !GetAtt {logical_id(c)}Function.Arn" for c in found]
    lines.append("")
    return lines


def mcp_block(root=ROOT):
    """The MCP function: POST /mcp/{channel}; tool calls invoke the plugin functions."""
    found = plugins(root)
    pairs = ",".join(f"{m['name']}=${{{logical_id(c)}Function}}" for c, _, m in found)
    lines = [
        "  McpFunction:",
        "    Type: AWS::Serverless::Function",
        "    Metadata:",
        "      BuildMethod: rust-cargolambda",
        "      BuildProperties:",
        "        Binary: mcp",
        "    Properties:",
        "      Description: \"Each channel's agent as an MCP server (POST /mcp/{channel})\"",
        "      # Above its Invoke budget (25 s, over a plugin's 20 s); under API Gateway's 30 s.",
        "      Timeout: 28",
        "      LoggingConfig:",
        "        LogFormat: JSON",
        "        LogGroup: !Ref McpLogGroup",
        "      CodeUri: .",
        "      Environment:",
        "        Variables:",
        f"          SWITCHBOARD_PLUGIN_FUNCTIONS: !Sub \"{pairs}\"",
        "          SWITCHBOARD_MCP_ALLOWED_ORIGINS: !Ref McpAllowedOrigins",
        "      Policies:",
        "        # Agents, as the agent builder reads them: a Query of the org's partition and a",
        "        # BatchGetItem of the manifests, and the org's profile (its audit retention).",
        "        # Never an API key's record.",
        "        - Statement:",
        "            - Effect: Allow",
        "              Action: [dynamodb:Query, dynamodb:BatchGetItem, dynamodb:GetItem]",
        "              Resource: !GetAtt RegistryTable.Arn",
        "              Condition:",
        "                ForAllValues:StringLike:",
        "                  dynamodb:LeadingKeys:",
        "                    - \"ORG#*\"",
        "                    - \"PLUGIN#*\"",
        "        # The tool calls it refuses itself are recorded in the org's audit log, and only",
        "        # those: a new entry is a conditional PutItem.",
        "        - Statement:",
        "            - Effect: Allow",
        "              Action: dynamodb:PutItem",
        "              Resource: !GetAtt DataTable.Arn",
        "              Condition:",
        "                ForAllValues:StringLike:",
        "                  dynamodb:LeadingKeys:",
        "                    - \"AUDIT#*\"",
        "        # The only role that may invoke the plugin functions: the tool-call event it",
        "        # sends carries a tenant the plugin trusts.",
    ]
    for crate, _, _ in found:
        lines += [
            "        - LambdaInvokePolicy:",
            f"            FunctionName: !Ref {logical_id(crate)}Function",
        ]
    lines += [
        "      Events:",
        "        Mcp:",
        "          Type: HttpApi",
        "          Properties:",
        "            ApiId: !Ref Api",
        "            # Any method: the function answers GET and DELETE with 405 itself.",
        "            Method: ANY",
        "            Path: /mcp/{channel}",
        "",
        "  McpLogGroup:",
        "    Type: AWS::Logs::LogGroup",
        "    Properties:",
        "      LogGroupName: !Sub /switchboard/${AWS::StackName}/mcp",
        "      RetentionInDays: !Ref LogRetentionDays",
        "",
    ]
    return lines


def split(text):
    """The template around the generated block: (before, block, after)."""
    start = text.find(BEGIN)
    end = text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"template.yaml: the markers are missing; put these two lines under Resources:\n{BEGIN}\n{END}")
    return text[:start], text[start:end + len(END)], text[end + len(END):]


def main(argv, root=ROOT):
    path = root / "template.yaml"
    before, current, after = split(path.read_text())
    wanted = block(root)
    if "--check" not in argv:
        path.write_text(before + wanted + after)
        print(f"template.yaml: {len(plugins(root))} plugin functions written")
        return 0
    if current == wanted:
        print(f"template.yaml: {len(plugins(root))} plugin functions up to date")
        return 0
    have = set(re.findall(r"^  (\w+)Function:$", current, re.M))
    want = {logical_id(c) for c, _, _ in plugins(root)}
    missing = ", ".join(sorted(want - have)) or "none"
    extra = ", ".join(sorted(have - want)) or "none"
    print(
        f"template.yaml: the plugin functions differ from functions/*/manifest.json "
        f"(missing: {missing}; no longer a plugin: {extra}; otherwise changed routes or names). "
        f"Run scripts/template to rewrite them.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
