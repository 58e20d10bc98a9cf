//! Bedrock agent aliases mapped to an organization and channel: how an action group's event
//! finds its tenant. A platform operator's write (`platform:orgs`): the agents run in the
//! operator's AWS account, which the plugin functions' Bedrock permission names, so no
//! organization can claim an agent id it was not given. An organization reads its own.

use super::*;
use crate::ids::BedrockAgentRef;
use crate::ports::StoreError;
use crate::registry::BedrockAgent;

impl AdminService {
    pub(super) async fn create_bedrock_agent(&self, body: &[u8]) -> Reply {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct NewMapping {
            agent_id: String,
            alias_id: String,
            org: String,
            channel: String,
        }
        let req: NewMapping = parse_as(body)?;
        let agent = BedrockAgentRef::parse(&req.agent_id, &req.alias_id)
            .map_err(|(field, why)| Error::invalid_field(format!("/{field}"), why))?;
        let org = OrgId::parse(req.org).map_err(|e| Error::invalid_field("/org", e.to_string()))?;
        let channel = Channel::parse(req.channel)
            .map_err(|e| Error::invalid_field("/channel", e.to_string()))?;
        if self.registry.get_profile(&org).await?.is_none() {
            return Err(Error::invalid_field(
                "/org",
                format!("there is no organization '{org}'; create it first (POST /admin/orgs)"),
            ));
        }
        if self.registry.get_channel(&org, &channel).await?.is_none() {
            return Err(Error::invalid_field(
                "/channel",
                format!(
                    "{org} has no channel '{channel}' configured; its admin configures it first (PUT /admin/channels/{channel})"
                ),
            ));
        }
        let mapping = BedrockAgent {
            agent,
            org,
            channel,
            created: (self.clock)(),
        };
        match self.registry.create_bedrock_agent(&mapping).await {
            Ok(()) => ok(201, mapping_json(&mapping)?),
            Err(StoreError::Conflict { .. }) => Err(Error::conflict(format!(
                "Bedrock agent {} is mapped already; unmap it first (DELETE /admin/bedrock-agents/{})",
                mapping.agent, mapping.agent
            ))),
            Err(e) => Err(e.into()),
        }
    }

    /// One mapping: any for an operator, the caller's own org's otherwise (another org's
    /// is as absent as an unmapped one).
    pub(super) async fn get_bedrock_agent(
        &self,
        tenant: &TenantContext,
        agent_id: &str,
        alias_id: &str,
    ) -> Reply {
        let agent = path_agent(agent_id, alias_id)?;
        let operator = holds(tenant, SCOPE_ORGS);
        if !operator {
            need(tenant, SCOPE_READ)?;
        }
        match self.registry.get_bedrock_agent(&agent).await? {
            Some(m) if operator || m.org == tenant.org => ok(200, mapping_json(&m)?),
            _ => Err(unmapped(&agent)),
        }
    }

    pub(super) async fn list_bedrock_agents(&self, org: &OrgId) -> Reply {
        let snap = self.registry.org_snapshot(org).await?;
        let list = snap
            .bedrock_agents
            .iter()
            .map(mapping_json)
            .collect::<Result<Vec<_>, _>>()?;
        ok(200, json!({ "bedrock_agents": list }))
    }

    pub(super) async fn delete_bedrock_agent(&self, agent_id: &str, alias_id: &str) -> Reply {
        let agent = path_agent(agent_id, alias_id)?;
        let gone = self.registry.delete_bedrock_agent(&agent).await?;
        let gone = gone.ok_or_else(|| unmapped(&agent))?;
        ok(200, mapping_json(&gone)?)
    }
}

fn path_agent(agent_id: &str, alias_id: &str) -> Result<BedrockAgentRef, Error> {
    BedrockAgentRef::parse(agent_id, alias_id).map_err(|(_, why)| Error::invalid_request(why))
}

fn unmapped(agent: &BedrockAgentRef) -> Error {
    Error::not_found(format!("Bedrock agent {agent} is not mapped"))
}

fn mapping_json(m: &BedrockAgent) -> Result<Value, Error> {
    Ok(json!({
        "agent_id": m.agent.agent_id,
        "alias_id": m.agent.alias_id,
        "org": m.org,
        "channel": m.channel,
        "created": m.created,
    }))
}
