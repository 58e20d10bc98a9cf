//! The instance configuration, as written in `config_schema` (camelCase keys). `teamName`
//! is only used by the instruction template.

use serde::Deserialize;

use crate::records::Priority;

/// Used when the config leaves `maxCommentLength` out.
pub const DEFAULT_MAX_COMMENT_LENGTH: usize = 2000;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportConfig {
    #[serde(default)]
    pub default_priority: Priority,
    #[serde(default = "yes")]
    pub allow_reopen: bool,
    #[serde(default = "default_max_comment_length")]
    pub max_comment_length: usize,
}

fn yes() -> bool {
    true
}

fn default_max_comment_length() -> usize {
    DEFAULT_MAX_COMMENT_LENGTH
}
