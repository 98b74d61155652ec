//! The library's modules depend on each other one way: no file reaches, through its `use`s and
//! paths, a file that reaches it back. Shared helpers live below the modules that use them.
//!
//! A child module may name its own ancestors (`super::`: a vendor's `mod.rs` holds the types its
//! submodules share); every other arrow, parent to child included, counts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// `src/a/b.rs` and `src/a/b/mod.rs` -> `a::b`; `src/lib.rs` -> ``.
fn module_of(path: &Path) -> String {
    let relative = path.strip_prefix("src").unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if matches!(
        parts.last().map(String::as_str),
        Some("mod" | "lib" | "main")
    ) {
        parts.pop();
    }
    parts.join("::")
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// Every path a source names from `anchor::` on (`crate::`, `super::`), with `{a, b::c}` groups
/// expanded. Comments are dropped first, so doc links do not count.
fn named_paths(source: &str, anchor: &str) -> Vec<Vec<String>> {
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    let mut paths = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(anchor) {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
        rest = &rest[at + anchor.len()..];
        if !preceded_by_ident {
            expand(rest, Vec::new(), &mut paths);
        }
    }
    paths
}

/// Reads `a::b::{c, d::e}` at the start of `text` into paths under `prefix`.
fn expand(text: &str, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    let mut rest = text.trim_start();
    loop {
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if len > 0 {
            path.push(rest[..len].to_string());
            rest = &rest[len..];
        }
        if let Some(after) = rest.strip_prefix("::") {
            rest = after.trim_start();
            if let Some(group) = rest.strip_prefix('{') {
                for item in top_level_items(group) {
                    expand(item, path.clone(), out);
                }
                return;
            }
            continue;
        }
        out.push(path);
        return;
    }
}

/// The comma-separated items of a `{...}` group (up to its closing brace).
fn top_level_items(group: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// The longest known module that `path` starts with.
fn resolve(path: &[String], modules: &BTreeSet<String>) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

fn is_ancestor(ancestor: &str, module: &str) -> bool {
    ancestor.is_empty() || module.starts_with(&format!("{ancestor}::"))
}

fn dependency_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.retain(|file| !file.ends_with("main.rs"));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut graph = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let source = std::fs::read_to_string(file).unwrap();
        let parent: Vec<String> = module
            .split("::")
            .map(str::to_string)
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, parent)| parent.to_vec())
            .unwrap_or_default();
        let mut targets = BTreeSet::new();
        let crate_paths = named_paths(&source, "crate::");
        let super_paths = named_paths(&source, "super::").into_iter().map(|path| {
            let mut full = parent.clone();
            full.extend(path);
            full
        });
        for path in crate_paths.into_iter().chain(super_paths) {
            if let Some(target) = resolve(&path, &modules) {
                if target != module && !is_ancestor(&target, &module) {
                    targets.insert(target);
                }
            }
        }
        graph.insert(module, targets);
    }
    graph
}

/// A cycle through `start`, if there is one (depth-first search).
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((node, path)) = stack.pop() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn module_dependencies_point_one_way() {
    let graph = dependency_graph();
    // The parser must see the arrows that exist, or this test could never fail.
    assert!(graph["server"].contains("router"), "{graph:#?}");
    assert!(graph["vendors::livechat::tokens"].contains("vendors::livechat::accounts"));
    let cycles: BTreeSet<String> = graph
        .keys()
        .filter_map(|module| cycle_from(&graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect();
    assert!(cycles.is_empty(), "module cycles:\n{cycles:#?}");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        cycle_from(&graph, "a").unwrap(),
        ["a", "b", "c", "a"].map(String::from)
    );
    let mut paths = named_paths(
        "use crate::x::{y::Z, w};\nlet v = crate::q::r(1);",
        "crate::",
    );
    paths.sort();
    assert_eq!(
        paths,
        vec![
            vec!["q".to_string(), "r".to_string()],
            vec!["x".to_string(), "w".to_string()],
            vec!["x".to_string(), "y".to_string(), "Z".to_string()],
        ]
    );
}

/// The vendor the module belongs to (`vendors::livechat::tokens` -> `livechat`).
fn vendor_of(module: &str) -> Option<&str> {
    module.strip_prefix("vendors::")?.split("::").next()
}

#[test]
fn vendors_stand_side_by_side_below_the_router() {
    let graph = dependency_graph();
    assert!(
        graph["router"].iter().any(|target| target == "vendors"),
        "the router reaches vendors through the interface: {:#?}",
        graph["router"]
    );
    let above = ["router", "server", "cli", "admin", "inject"];
    for (module, targets) in &graph {
        let Some(vendor) = vendor_of(module) else {
            continue;
        };
        for target in targets {
            if let Some(other) = vendor_of(target) {
                assert_eq!(other, vendor, "{module} reaches another vendor: {target}");
            }
            let root = target.split("::").next().unwrap_or("");
            assert!(
                !above.contains(&root),
                "{module} reaches {target}, which sits above the vendors"
            );
        }
    }
    for module in graph.keys().filter(|m| vendor_of(m).is_none()) {
        for target in &graph[module] {
            // A vendor's own subcommand (`tether livechat ...`) parses arguments and calls
            // into that vendor; nothing else outside it names its insides.
            let own_command =
                vendor_of(target).is_some_and(|vendor| module.as_str() == format!("cli::{vendor}"));
            assert!(
                module == "vendors"
                    || module.starts_with("testing")
                    || vendor_of(target).is_none()
                    || own_command,
                "{module} names a vendor's insides ({target}); go through the vendor interface"
            );
        }
    }
}
