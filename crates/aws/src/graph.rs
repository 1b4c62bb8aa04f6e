//! The stack graph: which stacks a pattern selects, which must exist already, and in what order stacks may be
//! created or deleted. Pure functions over the manifest's `depends_on`.

use std::collections::{BTreeMap, BTreeSet};

use lifeboat_contract::manifest::StackEntry;

use crate::error::EngineError;

/// Fails with the stacks on a cycle, if `depends_on` has one.
pub fn check_acyclic(stacks: &[StackEntry]) -> Result<(), EngineError> {
    let all: BTreeSet<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
    let order = topological_order(stacks, &all);
    if order.len() != all.len() {
        let placed: BTreeSet<&str> = order.iter().map(String::as_str).collect();
        let stuck: Vec<&str> = all.difference(&placed).copied().collect();
        return Err(EngineError::Input(format!(
            "stack dependencies form a cycle among: {}",
            stuck.join(", ")
        )));
    }
    Ok(())
}

/// The ids in `subset`, each after every stack of `subset` it depends on; ties keep manifest order.
/// Stacks on a cycle are left out (callers validate acyclicity first).
pub fn topological_order(stacks: &[StackEntry], subset: &BTreeSet<&str>) -> Vec<String> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut order = Vec::new();
    loop {
        let mut progressed = false;
        for s in stacks {
            if !subset.contains(s.id.as_str()) || placed.contains(s.id.as_str()) {
                continue;
            }
            let ready = s
                .depends_on
                .iter()
                .all(|d| !subset.contains(d.as_str()) || placed.contains(d.as_str()));
            if ready {
                placed.insert(s.id.as_str());
                order.push(s.id.clone());
                progressed = true;
            }
        }
        if !progressed {
            return order;
        }
    }
}

/// Shell-style glob on stack ids: `*` any run of characters, `?` one character. Several patterns may be given
/// separated by commas (`networking-*,storage-*`).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    pattern
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .any(|p| glob_one(p.as_bytes(), text.as_bytes()))
}

fn glob_one(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with backtracking to the last star: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// The stacks a run works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Selected ids in dependency order.
    pub ordered: Vec<String>,
    /// Stacks outside the selection that selected ones depend on: they must already be deployed.
    pub external_dependencies: BTreeSet<String>,
}

/// Selects the stacks whose id matches `pattern` (all stacks when `None`).
pub fn select(stacks: &[StackEntry], pattern: Option<&str>) -> Result<Selection, EngineError> {
    let chosen: BTreeSet<&str> = stacks
        .iter()
        .filter(|s| pattern.is_none_or(|p| glob_matches(p, &s.id)))
        .map(|s| s.id.as_str())
        .collect();
    if chosen.is_empty() {
        let known: Vec<&str> = stacks.iter().map(|s| s.id.as_str()).collect();
        return Err(EngineError::Input(format!(
            "--stacks {} matches no stack; the stacks are: {}",
            pattern.unwrap_or("*"),
            known.join(", ")
        )));
    }
    let external_dependencies = stacks
        .iter()
        .filter(|s| chosen.contains(s.id.as_str()))
        .flat_map(|s| s.depends_on.iter())
        .filter(|d| !chosen.contains(d.as_str()))
        .cloned()
        .collect();
    Ok(Selection {
        ordered: topological_order(stacks, &chosen),
        external_dependencies,
    })
}

/// For each stack, the stacks that depend on it directly.
pub fn dependents(stacks: &[StackEntry]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> =
        stacks.iter().map(|s| (s.id.clone(), Vec::new())).collect();
    for s in stacks {
        for d in &s.depends_on {
            map.entry(d.clone()).or_default().push(s.id.clone());
        }
    }
    map
}

/// Every stack that depends on `id`, directly or through others.
pub fn transitive_dependents(stacks: &[StackEntry], id: &str) -> BTreeSet<String> {
    let direct = dependents(stacks);
    let mut seen = BTreeSet::new();
    let mut todo = vec![id.to_string()];
    while let Some(cur) = todo.pop() {
        for d in direct.get(&cur).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

/// Every stack `id` depends on, directly or through others.
pub fn transitive_dependencies(stacks: &[StackEntry], id: &str) -> BTreeSet<String> {
    let by_id: BTreeMap<&str, &StackEntry> = stacks.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![id.to_string()];
    while let Some(cur) = todo.pop() {
        for d in by_id
            .get(cur.as_str())
            .map(|s| s.depends_on.as_slice())
            .unwrap_or_default()
        {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn entry(id: &str, region: &str, deps: &[&str]) -> StackEntry {
        StackEntry {
            id: id.into(),
            name: format!("lb-test-{id}"),
            component: id.split('-').next().unwrap_or(id).into(),
            region: region.into(),
            template: format!("{id}.template.json"),
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            parameters: vec![],
            outputs: vec![],
            resource_count: 1,
            stateful_resources: vec![],
        }
    }

    fn platform() -> Vec<StackEntry> {
        vec![
            entry("networking-primary", "us-east-1", &[]),
            entry("networking-standby", "us-west-2", &[]),
            entry("storage-standby", "us-west-2", &[]),
            // The replication source needs the destination bucket: the standby storage stack comes first.
            entry("storage-primary", "us-east-1", &["storage-standby"]),
            entry("database-primary", "us-east-1", &["networking-primary"]),
            entry(
                "database-standby",
                "us-west-2",
                &["networking-standby", "database-primary"],
            ),
        ]
    }

    #[test]
    fn order_puts_every_stack_after_its_dependencies_across_regions() {
        let stacks = platform();
        let sel = select(&stacks, None).unwrap();
        let pos = |id: &str| sel.ordered.iter().position(|x| x == id).unwrap();
        assert_eq!(sel.ordered.len(), 6);
        assert!(pos("storage-standby") < pos("storage-primary"));
        assert!(pos("database-primary") < pos("database-standby"));
        assert!(pos("networking-standby") < pos("database-standby"));
        assert!(sel.external_dependencies.is_empty());
    }

    #[test]
    fn a_pattern_selects_by_id_and_reports_dependencies_outside_it() {
        let stacks = platform();
        let sel = select(&stacks, Some("database-*")).unwrap();
        assert_eq!(sel.ordered, vec!["database-primary", "database-standby"]);
        assert_eq!(
            sel.external_dependencies,
            ["networking-primary", "networking-standby"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
        let err = select(&stacks, Some("compute-*")).unwrap_err().to_string();
        assert!(
            err.contains("matches no stack") && err.contains("networking-primary"),
            "{err}"
        );
    }

    #[test]
    fn glob_handles_stars_questions_and_lists() {
        assert!(glob_matches("networking-*", "networking-primary"));
        assert!(!glob_matches("networking-*", "storage-primary"));
        assert!(glob_matches("*-standby", "database-standby"));
        assert!(glob_matches("*work*-p?imary", "networking-primary"));
        assert!(glob_matches(
            "storage-*, networking-primary",
            "networking-primary"
        ));
        assert!(!glob_matches("networking", "networking-primary"));
        assert!(glob_matches("*", "x"));
    }

    #[test]
    fn cycles_are_reported_with_their_members() {
        let stacks = vec![
            entry("a", "r", &["b"]),
            entry("b", "r", &["a"]),
            entry("c", "r", &[]),
        ];
        let err = check_acyclic(&stacks).unwrap_err().to_string();
        assert!(err.ends_with("among: a, b"), "{err}");
    }

    #[test]
    fn transitive_relations_follow_chains() {
        let stacks = platform();
        let deps = transitive_dependencies(&stacks, "database-standby");
        assert!(deps.contains("database-primary") && deps.contains("networking-primary"));
        let dependents = transitive_dependents(&stacks, "networking-primary");
        assert_eq!(
            dependents,
            ["database-primary", "database-standby"]
                .iter()
                .map(|s| s.to_string())
                .collect()
        );
    }
}
