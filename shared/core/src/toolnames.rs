//! Tool names: what the agent builder calls each function, and how a plugin route finds the
//! function again from any name the builder emits, without knowing the agent.
//!
//! A declared name that is unique across the agent is kept. Colliding ones become
//! `<plugin>_<function>`; where that is over 64 characters (the strictest dialect's limit) or
//! still collides, a hashed form: the name's first 55 characters, `_` and 8 hex digits of the
//! SHA-256 of `<plugin>\0<function>`. Every form is a function of the plugin and the function
//! alone, so [`resolve`] can recognise it on the plugin's own route.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use crate::ids::{FunctionName, PluginName};

/// The longest tool name every dialect accepts (`^[a-zA-Z0-9_-]{1,64}$`).
pub const MAX_LEN: usize = 64;

/// `<plugin>_<function>`, or its hashed form when that is over [`MAX_LEN`].
pub fn qualified(plugin: &PluginName, function: &FunctionName) -> String {
    let name = format!("{plugin}_{function}");
    if name.len() <= MAX_LEN {
        name
    } else {
        hashed(plugin, function)
    }
}

/// The hashed form: unique to (plugin, function) with overwhelming probability.
pub fn hashed(plugin: &PluginName, function: &FunctionName) -> String {
    let digest = Sha256::new()
        .chain_update(plugin.as_str())
        .chain_update([0])
        .chain_update(function.as_str())
        .finalize();
    let tag: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let long = format!("{plugin}_{function}");
    // Names are ASCII (the manifest's name rule), so any byte index is a char boundary.
    let head = &long[..long.len().min(MAX_LEN - 1 - tag.len())];
    format!("{head}_{tag}")
}

/// Names every tool of an agent, given each tool's (plugin, function) in agent order.
/// `None` only for a tool whose hashed name collides with another's (never seen: 32 bits).
pub fn assign(tools: &[(&PluginName, &FunctionName)]) -> Vec<Option<String>> {
    let mut declared: HashMap<&str, usize> = HashMap::new();
    for (_, f) in tools {
        *declared.entry(f.as_str()).or_default() += 1;
    }
    let unique = |f: &FunctionName| declared.get(f.as_str()) == Some(&1);
    // The qualified names of the colliding tools, and how often each occurs.
    let mut qualified_counts: HashMap<String, usize> = HashMap::new();
    for (p, f) in tools.iter().filter(|(_, f)| !unique(f)) {
        *qualified_counts.entry(qualified(p, f)).or_default() += 1;
    }
    let mut taken: HashMap<String, usize> = HashMap::new();
    let mut names = Vec::with_capacity(tools.len());
    for (i, (p, f)) in tools.iter().enumerate() {
        let name = if unique(f) {
            f.to_string()
        } else {
            let q = qualified(p, f);
            let clashes = qualified_counts.get(&q) != Some(&1) || declared.contains_key(q.as_str());
            if clashes { hashed(p, f) } else { q }
        };
        names.push(match taken.insert(name.clone(), i) {
            None => Some(name),
            Some(_) => None,
        });
    }
    names
}

/// The function of `plugin` that `name` stands for: a declared name first, then a name the
/// builder made for one of the plugin's functions.
pub fn resolve<'a>(
    plugin: &PluginName,
    functions: impl IntoIterator<Item = &'a FunctionName> + Clone,
    name: &str,
) -> Option<&'a FunctionName> {
    functions
        .clone()
        .into_iter()
        .find(|f| f.as_str() == name)
        .or_else(|| {
            functions
                .into_iter()
                .find(|f| qualified(plugin, f) == name || hashed(plugin, f) == name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PluginName {
        PluginName::parse(s).unwrap()
    }
    fn f(s: &str) -> FunctionName {
        FunctionName::parse(s).unwrap()
    }

    #[test]
    fn forms_fit_the_limit_and_differ() {
        let long_p = p(&"p".repeat(40));
        let long_f = f(&"F".repeat(40));
        let h = qualified(&long_p, &long_f);
        assert_eq!(h.len(), MAX_LEN);
        assert_eq!(h, hashed(&long_p, &long_f));
        assert_ne!(hashed(&p("a_b"), &f("c")), hashed(&p("a"), &f("b_c")));
        assert_eq!(qualified(&p("crm"), &f("GetLead")), "crm_GetLead");
    }

    #[test]
    fn colliding_qualified_names_are_hashed_and_still_resolve() {
        let (ab, c, a, bc) = (p("a_b"), f("c"), p("a"), f("b_c"));
        let (x, c2, y, bc2) = (p("x"), f("c"), p("y"), f("b_c"));
        let tools = [(&ab, &c), (&x, &c2), (&a, &bc), (&y, &bc2)];
        let names: Vec<String> = assign(&tools).into_iter().map(Option::unwrap).collect();
        assert_eq!(names[1], "x_c");
        assert_eq!(names[3], "y_b_c");
        // a_b + c and a + b_c both qualify to "a_b_c": both get hashed forms.
        assert_ne!(names[0], "a_b_c");
        assert_ne!(names[0], names[2]);
        for ((plugin, function), name) in tools.iter().zip(&names) {
            assert_eq!(
                resolve(plugin, [*function], name),
                Some(*function),
                "{name}"
            );
        }
    }
}
