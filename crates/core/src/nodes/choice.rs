//! Which node builds which platform, as buildx chooses (build/driver.go): a node that runs the
//! platform natively (its workers list it), else one that lists it (declared with `--platform`,
//! then emulated), else the first node (the local backend). Only running nodes take work.
use crate::buildkit::platform::Platform;

use super::{NodeState, NodeStatus};

/// One node's share of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The node's name (the local one's is its context's).
    pub node: String,
    /// The platforms it builds, in the plan's order.
    pub platforms: Vec<String>,
}

/// The nodes that get work for `platforms` (normalized, as the plan keeps them), in the nodes'
/// order; `nodes` is [`super::list`]'s answer, the local node first. A node that is not running
/// takes nothing; with no running node at all, everything goes to the first node (the build
/// then starts it, or says why it cannot).
pub fn split(nodes: &[NodeStatus], platforms: &[String]) -> Vec<Share> {
    let running: Vec<&NodeStatus> = nodes.iter().filter(|n| n.state == NodeState::Running).collect();
    let mut shares: Vec<Share> = Vec::new();
    for platform in platforms {
        let wanted = Platform::parse(platform).map_or_else(|| platform.clone(), |p| p.to_string());
        let lists = |list: &[String]| list.iter().any(|p| Platform::parse(p).is_some_and(|p| p.to_string() == wanted));
        let chosen = running
            .iter()
            .find(|n| lists(&n.platforms))
            .or_else(|| running.iter().find(|n| lists(&n.declared_platforms)))
            .or_else(|| running.iter().find(|n| lists(&n.emulated_platforms)))
            .map(|n| n.name.clone())
            .or_else(|| nodes.first().map(|n| n.name.clone()));
        let Some(node) = chosen else { continue };
        match shares.iter_mut().find(|s| s.node == node) {
            Some(share) => share.platforms.push(platform.clone()),
            None => shares.push(Share { node, platforms: vec![platform.clone()] }),
        }
    }
    // In the nodes' order, as `nodes ls` shows them.
    shares.sort_by_key(|s| nodes.iter().position(|n| n.name == s.node));
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, state: NodeState, native: &[&str], declared: &[&str], emulated: &[&str]) -> NodeStatus {
        let strings = |list: &[&str]| list.iter().map(|p| p.to_string()).collect();
        NodeStatus {
            name: name.into(),
            local: name == "default",
            context: name.into(),
            host: None,
            state,
            declared_platforms: strings(declared),
            platforms: strings(native),
            emulated_platforms: strings(emulated),
            cache_bytes: None,
            cache_text: None,
            reason: None,
        }
    }

    fn platforms(list: &[&str]) -> Vec<String> {
        list.iter().map(|p| p.to_string()).collect()
    }

    fn share(node: &str, list: &[&str]) -> Share {
        Share { node: node.into(), platforms: platforms(list) }
    }

    #[test]
    fn a_native_node_wins_then_a_declared_one_then_an_emulating_one_then_the_first() {
        let local = node(
            "default",
            NodeState::Running,
            &["linux/amd64", "linux/amd64/v2"],
            &[],
            &["linux/arm64", "linux/riscv64"],
        );
        let arm = node("armbox", NodeState::Running, &["linux/arm64"], &[], &[]);
        let wanted = platforms(&["linux/amd64", "linux/arm64"]);
        assert_eq!(
            split(&[local.clone(), arm], &wanted),
            [share("default", &["linux/amd64"]), share("armbox", &["linux/arm64"])]
        );
        // The tests' second engine: amd64 itself, declared arm64; declared beats emulated.
        let declared = node("armbox", NodeState::Running, &["linux/amd64"], &["linux/arm64"], &["linux/arm64"]);
        assert_eq!(
            split(&[local.clone(), declared.clone()], &wanted),
            [share("default", &["linux/amd64"]), share("armbox", &["linux/arm64"])]
        );
        // Nobody else lists riscv64: the local node emulates it; s390x: nobody, so the first node.
        let more = platforms(&["linux/riscv64", "linux/s390x", "linux/aarch64"]);
        assert_eq!(
            split(&[local.clone(), declared], &more),
            [share("default", &["linux/riscv64", "linux/s390x"]), share("armbox", &["linux/aarch64"])]
        );
        assert_eq!(split(&[local], &wanted), [share("default", &["linux/amd64", "linux/arm64"])]);
    }

    #[test]
    fn a_stopped_or_unreachable_node_takes_nothing() {
        let local = node("default", NodeState::Running, &["linux/amd64"], &[], &["linux/arm64"]);
        let wanted = platforms(&["linux/amd64", "linux/arm64"]);
        for state in [NodeState::Stopped, NodeState::Unreachable] {
            let arm = node("armbox", state, &[], &["linux/arm64"], &[]);
            assert_eq!(split(&[local.clone(), arm], &wanted), [share("default", &["linux/amd64", "linux/arm64"])]);
        }
        let stopped_local = node("default", NodeState::Stopped, &[], &[], &[]);
        let arm = node("armbox", NodeState::Running, &["linux/arm64"], &[], &[]);
        assert_eq!(
            split(&[stopped_local, arm], &wanted),
            [share("default", &["linux/amd64"]), share("armbox", &["linux/arm64"])],
            "the local node is started by the build, so what nobody runs goes there"
        );
        assert_eq!(split(&[], &wanted), Vec::<Share>::new());
    }
}
