//! `switchboard data reindex`: writes the index entries of records stored before their
//! plugin declared the index (or by a build that did not keep them), and removes stale ones.
//! It works on the tables directly, with the operator's AWS credentials (or on `dev`'s
//! embedded store), not through the admin API: the admin function never writes plugin data.

use std::path::PathBuf;

use switchboard::data::{BuiltinData, ReindexCursor};
use switchboard::index::Indexes;
use switchboard::registry::Registry;
use switchboard::{EntityName, OrgId, PluginName};

/// `switchboard data reindex`'s arguments.
#[derive(clap::Args)]
pub struct Options {
    #[arg(long)]
    pub org: String,
    #[arg(long)]
    pub plugin: String,
    /// The published manifest whose indexes to build (default: the newest, which the
    /// deployed function serves).
    #[arg(long = "version")]
    pub version: Option<String>,
    /// The token a previous, interrupted run printed.
    #[arg(long)]
    pub from: Option<String>,
    /// Records or entries read per step.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// `dev`'s data directory (e.g. `.switchboard`); otherwise the tables the environment
    /// names, as for the functions.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Also remove every entry of `<entity>~<field>`, an index the manifest no longer
    /// declares (e.g. `leads~email` after crm 1.4.0); repeatable. Run it once the org's
    /// instance serves that manifest, or the older version writes them again.
    #[arg(long = "drop", value_name = "ENTITY~FIELD")]
    pub drop: Vec<String>,
}

pub async fn reindex(opts: Options) -> Result<(), String> {
    let org = OrgId::parse(opts.org.as_str()).map_err(|e| e.to_string())?;
    let plugin = PluginName::parse(opts.plugin.as_str()).map_err(|e| e.to_string())?;
    let from = match &opts.from {
        None => None,
        Some(token) => Some(ReindexCursor::parse(token).ok_or_else(|| {
            format!("--from '{token}' is not a token this command printed; start again without it")
        })?),
    };
    let drops = opts
        .drop
        .iter()
        .map(|d| {
            let (entity, field) = d
                .split_once('~')
                .filter(|(_, f)| {
                    !f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                .ok_or_else(|| format!("--drop '{d}' is not <entity>~<field>, e.g. leads~email"))?;
            let entity = EntityName::parse(entity).map_err(|e| format!("--drop '{d}': {e}"))?;
            Ok((entity, field.to_owned()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let (registry, data) = open(&opts).await?;
    let indexes = indexes(&registry, &plugin, opts.version.as_deref()).await?;
    let adapter = data.scoped(&org, &plugin, &indexes);
    if !drops.is_empty()
        && let Some(inst) = registry
            .get_instance(&org, &plugin)
            .await
            .map_err(|e| e.to_string())?
    {
        // The version the organization is served must not read what is dropped.
        let pinned = &inst.value.pinned_version;
        let served = self::indexes(&registry, &plugin, Some(pinned)).await?;
        for (entity, field) in &drops {
            let declares = |i: &Indexes| i.fields(entity).iter().any(|f| f.name() == field);
            // A still-declared index is refused by drop_index, with its own message.
            if declares(&served) && !declares(&indexes) {
                return Err(format!(
                    "{org}'s {plugin} instance is pinned to {pinned}, which still reads {entity}~{field}: upgrade the instance first"
                ));
            }
        }
    }
    for (entity, field) in &drops {
        let removed = adapter
            .drop_index(entity, field)
            .await
            .map_err(|e| e.to_string())?;
        println!("dropped {entity}~{field} for {org}: {removed} entries removed");
    }
    if indexes.is_empty() {
        println!("{plugin} declares no indexes: nothing to do");
        return Ok(());
    }
    let mut at = from;
    let (mut records, mut written, mut removed, mut skipped) = (0, 0, 0, 0);
    loop {
        let step = adapter.reindex(at.clone(), opts.batch).await.map_err(|e| {
            let resume = at
                .as_ref()
                .map(|c| format!("; resume with --from {}", c.token()))
                .unwrap_or_default();
            format!("{e}{resume}")
        })?;
        records += step.records;
        written += step.written;
        removed += step.removed;
        skipped += step.skipped;
        if step.records > 0 || step.entries_checked > 0 {
            // Each line says where to go on from if the run stops after it.
            let resume = step
                .next
                .as_ref()
                .map(|c| format!(" (resume with --from {})", c.token()))
                .unwrap_or_default();
            eprintln!(
                "{}: {} records, {} entries written, {} checked, {} removed{resume}",
                step.entity, step.records, step.written, step.entries_checked, step.removed
            );
        }
        match step.next {
            Some(next) => at = Some(next),
            None => break,
        }
    }
    println!(
        "reindexed {plugin} for {org}: {records} records, {written} index entries written, {removed} stale entries removed, {skipped} items left as a concurrent call wrote them"
    );
    Ok(())
}

async fn open(opts: &Options) -> Result<(Registry, BuiltinData), String> {
    match &opts.data_dir {
        Some(dir) => {
            let path = dir.join("switchboard.db");
            if !path.exists() {
                return Err(format!("{} does not exist", path.display()));
            }
            let db = switchboard_embedded::Embedded::open(&path).map_err(|e| e.to_string())?;
            Ok((
                Registry::new(db.registry_table()),
                BuiltinData::new(db.data_table()),
            ))
        }
        None => {
            let settings =
                switchboard::settings::Settings::from_env().map_err(|e| e.to_string())?;
            switchboard_runtime::tables(&settings)
                .await
                .map_err(|e| e.to_string())
        }
    }
}

/// The indexes of the manifest named (or the newest published one).
async fn indexes(
    registry: &Registry,
    plugin: &PluginName,
    version: Option<&str>,
) -> Result<Indexes, String> {
    let version = match version {
        Some(v) => v.to_owned(),
        None => registry
            .manifest_versions(plugin)
            .await
            .map_err(|e| e.to_string())?
            .pop()
            .ok_or_else(|| format!("no manifest of '{plugin}' is published"))?,
    };
    let manifest = registry
        .get_manifest(plugin, &version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{plugin} {version} is not published"))?;
    Ok(manifest.indexes)
}
