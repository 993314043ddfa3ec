//! The organisation: the node hierarchy (platform → agent 代理商 → sub-agent
//! or store → staff), the assets each node owns, roles, and pure permission
//! checks.
//!
//! Every station, cabinet and device belongs to exactly one node. Staff are
//! [`Actor`]s placed on a node: platform roles on the platform node, agent
//! roles on an agent, sub-agent or store node. [`Org::can`] decides whether
//! an actor may perform an [`Action`] on a [`Resource`]: the role must allow
//! the action (the matrix of [`Role::allows`], printed in docs/roles.md), and
//! an agent role only reaches resources in its own node's subtree.
//!
//! ```
//! use chargeswap_core::org::{Action, Actor, AssetKind, Org, OrgError, Resource, Role};
//! let org: Org = serde_json::from_str(r#"{
//!   "nodes": [
//!     {"id": "hq", "kind": "platform"},
//!     {"id": "east", "kind": "agent", "parent": "hq"},
//!     {"id": "east-s1", "kind": "store", "parent": "east"},
//!     {"id": "west", "kind": "agent", "parent": "hq"}
//!   ],
//!   "assets": [
//!     {"kind": "cabinet", "id": "CAB-1", "node": "east-s1"},
//!     {"kind": "cabinet", "id": "CAB-2", "node": "west"}
//!   ]}"#).unwrap();
//! let ops = Actor { id: "u1".into(), role: Role::AgentAdmin, node: Some("east".into()) };
//! let cab = |id: &str| Resource::Asset { kind: AssetKind::Cabinet, id: id.into() };
//! assert_eq!(org.can(&ops, Action::OperateDevices, &cab("CAB-1")), Ok(()));
//! assert!(matches!(org.can(&ops, Action::OperateDevices, &cab("CAB-2")), Err(OrgError::OutOfScope { .. })));
//! assert!(matches!(org.can(&ops, Action::ApproveRefunds, &cab("CAB-1")), Err(OrgError::NotPermitted { .. })));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Errors of the org module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrgError {
    /// A node id used twice.
    #[error("node {id} is defined twice; node ids must be unique")]
    DuplicateNode {
        /// The id.
        id: String,
    },
    /// A node id that is empty.
    #[error("a node has an empty id; expected a non-empty id")]
    EmptyNodeId,
    /// No platform node, or a platform node with a parent.
    #[error("the organisation needs exactly one platform node without a parent")]
    NoPlatform,
    /// Two platform nodes.
    #[error("platform nodes {first} and {second}: expected exactly one")]
    MultiplePlatforms {
        /// The first.
        first: String,
        /// The second.
        second: String,
    },
    /// A node whose parent is missing.
    #[error("node {node} names parent {parent}, which is not defined")]
    UnknownParent {
        /// The node.
        node: String,
        /// The missing parent.
        parent: String,
    },
    /// A node under a parent of the wrong kind.
    #[error("node {node} ({node_kind:?}) cannot sit under {parent_kind:?}; expected {expected}")]
    BadNesting {
        /// The node.
        node: String,
        /// Its kind.
        node_kind: NodeKind,
        /// Its parent's kind (none for a missing parent).
        parent_kind: Option<NodeKind>,
        /// The allowed parents.
        expected: String,
    },
    /// An asset listed twice (an asset belongs to exactly one node).
    #[error("{asset_kind:?} {id} is listed twice; an asset belongs to exactly one node")]
    DuplicateAsset {
        /// Its kind.
        asset_kind: AssetKind,
        /// Its id.
        id: String,
    },
    /// A node id the organisation does not have.
    #[error("unknown node {node}")]
    UnknownNode {
        /// The id.
        node: String,
    },
    /// An asset the organisation does not have.
    #[error("unknown {asset_kind:?} {id}")]
    UnknownAsset {
        /// Its kind.
        asset_kind: AssetKind,
        /// Its id.
        id: String,
    },
    /// An actor placed on a node its role cannot sit on.
    #[error("a {role:?} cannot sit on node {node:?}; expected {expected}")]
    ActorPlacement {
        /// The role.
        role: Role,
        /// The node given.
        node: Option<String>,
        /// Where the role sits.
        expected: String,
    },
    /// The role does not allow the action at all.
    #[error("role {role:?} may not {action:?}")]
    NotPermitted {
        /// The role.
        role: Role,
        /// The action.
        action: Action,
    },
    /// The resource lies outside the actor's subtree.
    #[error("resource at node {resource_node} is outside the subtree of node {actor_node}")]
    OutOfScope {
        /// The actor's node.
        actor_node: String,
        /// The resource's node (the platform node for platform-wide resources).
        resource_node: String,
    },
    /// An end user acting on someone else's account or order.
    #[error("end user {actor} may only act on their own account and orders, not {resource}")]
    NotOwner {
        /// The end user.
        actor: String,
        /// What was asked for.
        resource: String,
    },
}

type Result<T> = core::result::Result<T, OrgError>;

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The platform (the root; exactly one).
    Platform,
    /// An agent (代理商), under the platform.
    Agent,
    /// A sub-agent, under an agent.
    SubAgent,
    /// A store (网点), under an agent or a sub-agent.
    Store,
}

/// A node of the hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Node {
    /// Node id.
    pub id: String,
    /// Its kind.
    pub kind: NodeKind,
    /// Its parent (none only for the platform).
    #[serde(default)]
    pub parent: Option<String>,
    /// Display name.
    #[serde(default)]
    pub name: String,
}

/// What kind of asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssetKind {
    /// A station (网点 site).
    Station,
    /// A swap or charging cabinet.
    Cabinet,
    /// Any other device (pile, DTU, battery, TBOX).
    Device,
}

/// An asset and the one node it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    /// Its kind.
    pub kind: AssetKind,
    /// Its id (unique per kind).
    pub id: String,
    /// The owning node.
    pub node: String,
}

/// The organisation as data: nodes and assets. [`Org`] is its validated form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Every asset.
    #[serde(default)]
    pub assets: Vec<Asset>,
}

/// A validated organisation. Deserializes from (and serializes to) an
/// [`OrgSpec`], validating on the way in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OrgSpec", into = "OrgSpec")]
pub struct Org {
    spec: OrgSpec,
    root: String,
    nodes: BTreeMap<String, usize>,
    assets: BTreeMap<(AssetKind, String), String>,
}

impl TryFrom<OrgSpec> for Org {
    type Error = OrgError;
    fn try_from(spec: OrgSpec) -> Result<Org> {
        Org::new(spec)
    }
}

impl From<Org> for OrgSpec {
    fn from(o: Org) -> OrgSpec {
        o.spec
    }
}

impl Org {
    /// Validates a spec: unique node ids, exactly one platform at the root,
    /// agents under the platform, sub-agents under agents, stores under agents
    /// or sub-agents; each asset listed once, on an existing node.
    pub fn new(spec: OrgSpec) -> Result<Org> {
        let mut nodes = BTreeMap::new();
        let mut root: Option<&str> = None;
        for (i, n) in spec.nodes.iter().enumerate() {
            if n.id.is_empty() {
                return Err(OrgError::EmptyNodeId);
            }
            if nodes.insert(n.id.clone(), i).is_some() {
                return Err(OrgError::DuplicateNode { id: n.id.clone() });
            }
            if n.kind == NodeKind::Platform {
                if let Some(first) = root {
                    return Err(OrgError::MultiplePlatforms {
                        first: first.to_owned(),
                        second: n.id.clone(),
                    });
                }
                root = Some(&n.id);
            }
        }
        let root = root.ok_or(OrgError::NoPlatform)?.to_owned();
        for n in &spec.nodes {
            let parent_kind = match &n.parent {
                None => None,
                Some(p) => {
                    let i = nodes.get(p).ok_or_else(|| OrgError::UnknownParent {
                        node: n.id.clone(),
                        parent: p.clone(),
                    })?;
                    spec.nodes.get(*i).map(|x| x.kind)
                }
            };
            let (ok, expected) = match n.kind {
                NodeKind::Platform => (parent_kind.is_none(), "no parent"),
                NodeKind::Agent => (parent_kind == Some(NodeKind::Platform), "the platform"),
                NodeKind::SubAgent => (parent_kind == Some(NodeKind::Agent), "an agent"),
                NodeKind::Store => (
                    matches!(parent_kind, Some(NodeKind::Agent | NodeKind::SubAgent)),
                    "an agent or a sub-agent",
                ),
            };
            if !ok {
                if n.kind == NodeKind::Platform {
                    return Err(OrgError::NoPlatform);
                }
                return Err(OrgError::BadNesting {
                    node: n.id.clone(),
                    node_kind: n.kind,
                    parent_kind,
                    expected: expected.to_owned(),
                });
            }
        }
        let mut assets = BTreeMap::new();
        for a in &spec.assets {
            if !nodes.contains_key(&a.node) {
                return Err(OrgError::UnknownNode {
                    node: a.node.clone(),
                });
            }
            if assets
                .insert((a.kind, a.id.clone()), a.node.clone())
                .is_some()
            {
                return Err(OrgError::DuplicateAsset {
                    asset_kind: a.kind,
                    id: a.id.clone(),
                });
            }
        }
        Ok(Org {
            spec,
            root,
            nodes,
            assets,
        })
    }

    /// The platform node's id.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// A node by id.
    pub fn node(&self, id: &str) -> Result<&Node> {
        self.nodes
            .get(id)
            .and_then(|i| self.spec.nodes.get(*i))
            .ok_or_else(|| OrgError::UnknownNode {
                node: id.to_owned(),
            })
    }

    /// Every node, in the order given.
    pub fn nodes(&self) -> &[Node] {
        &self.spec.nodes
    }

    /// Every asset, in the order given.
    pub fn assets(&self) -> &[Asset] {
        &self.spec.assets
    }

    /// The node an asset belongs to.
    pub fn owner_of(&self, kind: AssetKind, id: &str) -> Result<&str> {
        self.assets
            .get(&(kind, id.to_owned()))
            .map(String::as_str)
            .ok_or_else(|| OrgError::UnknownAsset {
                asset_kind: kind,
                id: id.to_owned(),
            })
    }

    /// The node and its ancestors, nearest first, ending at the platform.
    pub fn ancestors(&self, id: &str) -> Result<Vec<&Node>> {
        let mut out = Vec::new();
        let mut cur = Some(self.node(id)?);
        // Depth is at most 4 by the nesting rules; the bound is belt and braces.
        while let Some(n) = cur {
            if out.len() > self.spec.nodes.len() {
                break;
            }
            out.push(n);
            cur = match &n.parent {
                Some(p) => Some(self.node(p)?),
                None => None,
            };
        }
        Ok(out)
    }

    /// The agent chain of a node for revenue sharing: the node and its
    /// ancestors below the platform, nearest first (at most three: store,
    /// sub-agent, agent). Empty for the platform itself.
    pub fn agent_chain(&self, id: &str) -> Result<Vec<String>> {
        Ok(self
            .ancestors(id)?
            .into_iter()
            .filter(|n| n.kind != NodeKind::Platform)
            .map(|n| n.id.clone())
            .collect())
    }

    /// Whether `node` is `ancestor` or lies below it.
    pub fn is_within(&self, node: &str, ancestor: &str) -> Result<bool> {
        self.node(ancestor)?;
        Ok(self.ancestors(node)?.iter().any(|n| n.id == ancestor))
    }

    /// The ids of `id` and every node below it.
    pub fn subtree(&self, id: &str) -> Result<Vec<String>> {
        self.node(id)?;
        let mut out = Vec::new();
        for n in &self.spec.nodes {
            if self.is_within(&n.id, id)? {
                out.push(n.id.clone());
            }
        }
        Ok(out)
    }

    /// The node a resource belongs to (the platform node for platform-wide resources).
    pub fn resource_node(&self, r: &Resource) -> Result<String> {
        let node = match r {
            Resource::Platform => return Ok(self.root.clone()),
            Resource::Asset { kind, id } => self.owner_of(*kind, id)?,
            Resource::Node { id } => id,
            Resource::Rider { node, .. } | Resource::Order { node, .. } => node,
            Resource::Statement { agent } => agent,
        };
        self.node(node)?;
        Ok(node.to_owned())
    }

    /// The node an actor acts from, checking the role may sit there.
    pub fn actor_node(&self, a: &Actor) -> Result<Option<String>> {
        let placement = |expected: &str| OrgError::ActorPlacement {
            role: a.role,
            node: a.node.clone(),
            expected: expected.to_owned(),
        };
        match a.role.scope() {
            Scope::Own => Ok(None),
            Scope::Platform => match &a.node {
                None => Ok(Some(self.root.clone())),
                Some(n) if *n == self.root => Ok(Some(n.clone())),
                Some(_) => Err(placement("the platform node")),
            },
            Scope::Subtree => {
                let id = a.node.as_ref().ok_or_else(|| placement("an agent node"))?;
                let kind = self.node(id)?.kind;
                let ok = match a.role {
                    Role::Agent => matches!(kind, NodeKind::Agent | NodeKind::SubAgent),
                    _ => kind != NodeKind::Platform,
                };
                if ok {
                    Ok(Some(id.clone()))
                } else if a.role == Role::Agent {
                    Err(placement("an agent or sub-agent node"))
                } else {
                    Err(placement("an agent, sub-agent or store node"))
                }
            }
        }
    }

    /// May `actor` perform `action` on `resource`? `Ok(())` or the reason not.
    ///
    /// Checks, in order: the actor's placement, that the resource exists, that
    /// the role allows the action, then the scope — platform roles reach
    /// everything, agent roles only their node's subtree (never platform-wide
    /// resources), end users only their own account and orders (and any asset,
    /// to use services at it).
    pub fn can(&self, actor: &Actor, action: Action, resource: &Resource) -> Result<()> {
        let from = self.actor_node(actor)?;
        let at = self.resource_node(resource)?;
        if !actor.role.allows(action) {
            return Err(OrgError::NotPermitted {
                role: actor.role,
                action,
            });
        }
        match (actor.role.scope(), from) {
            (Scope::Platform, _) => Ok(()),
            (Scope::Subtree, Some(from)) => {
                if matches!(resource, Resource::Platform) || !self.is_within(&at, &from)? {
                    Err(OrgError::OutOfScope {
                        actor_node: from,
                        resource_node: at,
                    })
                } else {
                    Ok(())
                }
            }
            (Scope::Own, _) | (Scope::Subtree, None) => {
                let own = match resource {
                    Resource::Rider { id, .. } => *id == actor.id,
                    Resource::Order { rider_id, .. } => *rider_id == actor.id,
                    Resource::Asset { .. } => action == Action::UseServices,
                    _ => false,
                };
                if own {
                    Ok(())
                } else {
                    Err(OrgError::NotOwner {
                        actor: actor.id.clone(),
                        resource: resource.describe(),
                    })
                }
            }
        }
    }
}

/// A role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System admin: system settings, the node structure, staff accounts.
    SystemAdmin,
    /// Operations admin: devices, products, orders, riders.
    OperationsAdmin,
    /// Finance admin: refunds, reports, revenue rules, settlements.
    FinanceAdmin,
    /// Platform salesperson: riders and package sales.
    PlatformSales,
    /// Agent (代理商) owner: runs its subtree, including its money.
    Agent,
    /// Agent admin: operations inside the agent's subtree.
    AgentAdmin,
    /// Agent salesperson: riders and package sales inside the subtree.
    AgentSales,
    /// End user (rider): their own account and orders.
    EndUser,
}

/// How far a role reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// The whole organisation.
    Platform,
    /// The subtree of the actor's node.
    Subtree,
    /// The actor's own account and orders.
    Own,
}

/// Something an actor does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// System settings and role definitions.
    ManageSystem,
    /// Create and edit agents, sub-agents and stores.
    ManageNodes,
    /// Create staff accounts and assign roles.
    ManageStaff,
    /// See stations, cabinets and devices and their status.
    ViewAssets,
    /// Register, assign and configure stations, cabinets and devices.
    ManageAssets,
    /// Remote commands: open a door, lock a slot, reboot.
    OperateDevices,
    /// Tariffs, packages and prices.
    ManageProducts,
    /// See orders.
    ViewOrders,
    /// Resolve abnormal orders (异常订单).
    HandleAbnormalOrders,
    /// Approve or reject package freezes.
    ApproveFreezes,
    /// See rider accounts.
    ViewRiders,
    /// Edit rider accounts: groups, blocks, onboarding.
    ManageRiders,
    /// Sell or assign packages to riders.
    SellPackages,
    /// Approve package and deposit refunds.
    ApproveRefunds,
    /// See financial reports and the ledger.
    ViewFinance,
    /// Set revenue-sharing rules.
    ManageRevenueRules,
    /// See settlement statements.
    ViewSettlements,
    /// Confirm and pay out settlement statements.
    ConfirmSettlements,
    /// Use services: buy packages, swap, charge, rent, ask for refunds and freezes.
    UseServices,
}

impl Action {
    /// Every action, in matrix order.
    pub const ALL: [Action; 19] = [
        Action::ManageSystem,
        Action::ManageNodes,
        Action::ManageStaff,
        Action::ViewAssets,
        Action::ManageAssets,
        Action::OperateDevices,
        Action::ManageProducts,
        Action::ViewOrders,
        Action::HandleAbnormalOrders,
        Action::ApproveFreezes,
        Action::ViewRiders,
        Action::ManageRiders,
        Action::SellPackages,
        Action::ApproveRefunds,
        Action::ViewFinance,
        Action::ManageRevenueRules,
        Action::ViewSettlements,
        Action::ConfirmSettlements,
        Action::UseServices,
    ];
}

impl Role {
    /// Every role, in matrix order.
    pub const ALL: [Role; 8] = [
        Role::SystemAdmin,
        Role::OperationsAdmin,
        Role::FinanceAdmin,
        Role::PlatformSales,
        Role::Agent,
        Role::AgentAdmin,
        Role::AgentSales,
        Role::EndUser,
    ];

    /// How far the role reaches.
    pub fn scope(self) -> Scope {
        match self {
            Role::SystemAdmin
            | Role::OperationsAdmin
            | Role::FinanceAdmin
            | Role::PlatformSales => Scope::Platform,
            Role::Agent | Role::AgentAdmin | Role::AgentSales => Scope::Subtree,
            Role::EndUser => Scope::Own,
        }
    }

    /// The permission matrix: whether the role may perform the action at all
    /// (the scope then limits where). docs/roles.md prints this table.
    pub fn allows(self, action: Action) -> bool {
        use Action as A;
        use Role as R;
        match action {
            A::ManageSystem => matches!(self, R::SystemAdmin),
            A::ManageNodes => matches!(self, R::SystemAdmin | R::OperationsAdmin | R::Agent),
            A::ManageStaff => matches!(self, R::SystemAdmin | R::Agent | R::AgentAdmin),
            A::ViewAssets => !matches!(self, R::EndUser),
            A::ManageAssets => matches!(
                self,
                R::SystemAdmin | R::OperationsAdmin | R::Agent | R::AgentAdmin
            ),
            A::OperateDevices | A::HandleAbnormalOrders | A::ApproveFreezes => {
                matches!(self, R::OperationsAdmin | R::Agent | R::AgentAdmin)
            }
            A::ManageProducts => matches!(self, R::OperationsAdmin | R::Agent),
            A::ViewOrders | A::ViewRiders => true,
            A::ManageRiders | A::SellPackages => matches!(
                self,
                R::OperationsAdmin | R::PlatformSales | R::Agent | R::AgentAdmin | R::AgentSales
            ),
            A::ApproveRefunds => matches!(self, R::FinanceAdmin | R::Agent),
            A::ViewFinance => matches!(self, R::SystemAdmin | R::FinanceAdmin | R::Agent),
            A::ManageRevenueRules | A::ConfirmSettlements => matches!(self, R::FinanceAdmin),
            A::ViewSettlements => matches!(self, R::FinanceAdmin | R::Agent),
            A::UseServices => matches!(self, R::EndUser),
        }
    }
}

/// Someone acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The user id (for an end user, the rider id).
    pub id: String,
    /// The role.
    pub role: Role,
    /// The node the actor sits on: the platform node (or none) for platform
    /// roles, an agent/sub-agent/store node for agent roles, none for end users.
    #[serde(default)]
    pub node: Option<String>,
}

/// What an action is performed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Resource {
    /// Platform-wide things (system settings, the global catalog).
    Platform,
    /// A node itself (its profile, its children, its staff).
    Node {
        /// The node id.
        id: String,
    },
    /// A station, cabinet or device (its node is looked up).
    Asset {
        /// Its kind.
        kind: AssetKind,
        /// Its id.
        id: String,
    },
    /// A rider account, belonging to its home node.
    Rider {
        /// The rider id.
        id: String,
        /// The rider's home node.
        node: String,
    },
    /// An order, belonging to the node where it happened.
    Order {
        /// The order id.
        id: String,
        /// The node where it happened.
        node: String,
        /// The rider who placed it.
        rider_id: String,
    },
    /// An agent's settlement statement.
    Statement {
        /// The agent node.
        agent: String,
    },
}

impl Resource {
    fn describe(&self) -> String {
        match self {
            Resource::Platform => "the platform".to_owned(),
            Resource::Node { id } => format!("node {id}"),
            Resource::Asset { kind, id } => format!("{kind:?} {id}"),
            Resource::Rider { id, .. } => format!("rider {id}"),
            Resource::Order { id, .. } => format!("order {id}"),
            Resource::Statement { agent } => format!("the statement of {agent}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn node(id: &str, kind: NodeKind, parent: Option<&str>) -> Node {
        Node {
            id: id.into(),
            kind,
            parent: parent.map(Into::into),
            name: String::new(),
        }
    }

    fn asset(kind: AssetKind, id: &str, node: &str) -> Asset {
        Asset {
            kind,
            id: id.into(),
            node: node.into(),
        }
    }

    /// hq ─┬─ east ─┬─ east-sub ── east-sub-s1
    ///     │        └─ east-s1
    ///     └─ west
    fn org() -> Org {
        Org::new(OrgSpec {
            nodes: vec![
                node("hq", NodeKind::Platform, None),
                node("east", NodeKind::Agent, Some("hq")),
                node("east-sub", NodeKind::SubAgent, Some("east")),
                node("east-sub-s1", NodeKind::Store, Some("east-sub")),
                node("east-s1", NodeKind::Store, Some("east")),
                node("west", NodeKind::Agent, Some("hq")),
            ],
            assets: vec![
                asset(AssetKind::Station, "ST-1", "east-sub-s1"),
                asset(AssetKind::Cabinet, "CAB-1", "east-sub-s1"),
                asset(AssetKind::Cabinet, "CAB-2", "east-s1"),
                asset(AssetKind::Cabinet, "CAB-3", "west"),
                asset(AssetKind::Device, "200001", "hq"),
            ],
        })
        .unwrap()
    }

    fn actor(role: Role, node: Option<&str>) -> Actor {
        Actor {
            id: "u".into(),
            role,
            node: node.map(Into::into),
        }
    }

    fn cab(id: &str) -> Resource {
        Resource::Asset {
            kind: AssetKind::Cabinet,
            id: id.into(),
        }
    }

    #[test]
    fn structure_queries() {
        let o = org();
        assert_eq!(o.root(), "hq");
        assert_eq!(
            o.owner_of(AssetKind::Cabinet, "CAB-1").unwrap(),
            "east-sub-s1"
        );
        assert!(matches!(
            o.owner_of(AssetKind::Station, "CAB-1"),
            Err(OrgError::UnknownAsset { .. })
        ));
        assert_eq!(
            o.agent_chain("east-sub-s1").unwrap(),
            ["east-sub-s1", "east-sub", "east"]
        );
        assert_eq!(o.agent_chain("east-s1").unwrap(), ["east-s1", "east"]);
        assert!(o.agent_chain("hq").unwrap().is_empty());
        assert_eq!(
            o.subtree("east").unwrap(),
            ["east", "east-sub", "east-sub-s1", "east-s1"]
        );
        assert!(o.is_within("east-sub-s1", "east").unwrap());
        assert!(!o.is_within("west", "east").unwrap());
        assert!(o.is_within("x", "east").is_err());
        // serde round trip through the spec
        let js = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<Org>(&js).unwrap(), o);
    }

    #[test]
    fn invalid_organisations() {
        let base = || OrgSpec {
            nodes: vec![
                node("hq", NodeKind::Platform, None),
                node("a", NodeKind::Agent, Some("hq")),
            ],
            assets: vec![],
        };
        let mut s = base();
        s.nodes.push(node("a", NodeKind::Agent, Some("hq")));
        assert!(matches!(Org::new(s), Err(OrgError::DuplicateNode { .. })));
        let mut s = base();
        s.nodes.remove(0);
        s.nodes[0].parent = None;
        assert!(matches!(Org::new(s), Err(OrgError::NoPlatform)));
        let mut s = base();
        s.nodes[1].parent = None;
        assert!(matches!(
            Org::new(s),
            Err(OrgError::BadNesting {
                parent_kind: None,
                ..
            })
        ));
        let mut s = base();
        s.nodes.push(node("hq2", NodeKind::Platform, None));
        assert!(matches!(
            Org::new(s),
            Err(OrgError::MultiplePlatforms { .. })
        ));
        let mut s = base();
        s.nodes[0].parent = Some("a".into());
        assert!(matches!(Org::new(s), Err(OrgError::NoPlatform)));
        let mut s = base();
        s.nodes.push(node("s", NodeKind::Store, Some("nope")));
        assert!(matches!(Org::new(s), Err(OrgError::UnknownParent { .. })));
        let mut s = base();
        s.nodes.push(node("s", NodeKind::SubAgent, Some("hq")));
        assert!(matches!(Org::new(s), Err(OrgError::BadNesting { .. })));
        let mut s = base();
        s.nodes.push(node("s", NodeKind::Store, Some("hq")));
        assert!(matches!(Org::new(s), Err(OrgError::BadNesting { .. })));
        let mut s = base();
        s.nodes.push(node("", NodeKind::Store, Some("a")));
        assert!(matches!(Org::new(s), Err(OrgError::EmptyNodeId)));
        let mut s = base();
        s.assets = vec![
            asset(AssetKind::Cabinet, "C", "a"),
            asset(AssetKind::Cabinet, "C", "hq"),
        ];
        assert!(matches!(Org::new(s), Err(OrgError::DuplicateAsset { .. })));
        let mut s = base();
        s.assets = vec![asset(AssetKind::Cabinet, "C", "zz")];
        assert!(matches!(Org::new(s), Err(OrgError::UnknownNode { .. })));
        // same id, different kind: two assets
        let mut s = base();
        s.assets = vec![
            asset(AssetKind::Cabinet, "C", "a"),
            asset(AssetKind::Station, "C", "hq"),
        ];
        assert!(Org::new(s).is_ok());
        assert!(serde_json::from_str::<Org>(r#"{"nodes":[]}"#).is_err());
    }

    #[test]
    fn platform_roles_reach_everything_they_are_allowed() {
        let o = org();
        let ops = actor(Role::OperationsAdmin, None);
        assert_eq!(o.can(&ops, Action::OperateDevices, &cab("CAB-3")), Ok(()));
        assert_eq!(
            o.can(&ops, Action::ManageProducts, &Resource::Platform),
            Ok(())
        );
        assert!(matches!(
            o.can(&ops, Action::ApproveRefunds, &cab("CAB-3")),
            Err(OrgError::NotPermitted { .. })
        ));
        let fin = actor(Role::FinanceAdmin, Some("hq"));
        let st = Resource::Statement {
            agent: "west".into(),
        };
        assert_eq!(o.can(&fin, Action::ConfirmSettlements, &st), Ok(()));
        assert!(matches!(
            o.can(
                &actor(Role::FinanceAdmin, Some("east")),
                Action::ViewFinance,
                &st
            ),
            Err(OrgError::ActorPlacement { .. })
        ));
        let sys = actor(Role::SystemAdmin, None);
        assert_eq!(
            o.can(&sys, Action::ManageSystem, &Resource::Platform),
            Ok(())
        );
        assert!(o.can(&sys, Action::OperateDevices, &cab("CAB-1")).is_err());
        assert!(matches!(
            o.can(&sys, Action::ViewAssets, &cab("NOPE")),
            Err(OrgError::UnknownAsset { .. })
        ));
    }

    #[test]
    fn agent_roles_stay_in_their_subtree() {
        let o = org();
        let east = actor(Role::Agent, Some("east"));
        assert_eq!(o.can(&east, Action::OperateDevices, &cab("CAB-1")), Ok(()));
        assert_eq!(
            o.can(
                &east,
                Action::ViewSettlements,
                &Resource::Statement {
                    agent: "east".into()
                }
            ),
            Ok(())
        );
        assert_eq!(
            o.can(&east, Action::OperateDevices, &cab("CAB-3")),
            Err(OrgError::OutOfScope {
                actor_node: "east".into(),
                resource_node: "west".into()
            })
        );
        assert!(matches!(
            o.can(&east, Action::ManageProducts, &Resource::Platform),
            Err(OrgError::OutOfScope { .. })
        ));
        assert!(matches!(
            o.can(
                &east,
                Action::ViewAssets,
                &Resource::Asset {
                    kind: AssetKind::Device,
                    id: "200001".into()
                }
            ),
            Err(OrgError::OutOfScope { .. })
        ));
        // the sub-agent's admin cannot look up at the parent agent or sideways
        let sub = actor(Role::AgentAdmin, Some("east-sub"));
        assert_eq!(o.can(&sub, Action::ViewAssets, &cab("CAB-1")), Ok(()));
        assert!(o.can(&sub, Action::ViewAssets, &cab("CAB-2")).is_err());
        assert!(
            o.can(
                &sub,
                Action::ViewOrders,
                &Resource::Node { id: "east".into() }
            )
            .is_err()
        );
        let rider = Resource::Rider {
            id: "r9".into(),
            node: "east-s1".into(),
        };
        let sales = actor(Role::AgentSales, Some("east-s1"));
        assert_eq!(o.can(&sales, Action::SellPackages, &rider), Ok(()));
        assert!(matches!(
            o.can(&sales, Action::OperateDevices, &cab("CAB-2")),
            Err(OrgError::NotPermitted { .. })
        ));
        // placement
        assert!(matches!(
            o.can(
                &actor(Role::Agent, Some("hq")),
                Action::ViewAssets,
                &cab("CAB-1")
            ),
            Err(OrgError::ActorPlacement { .. })
        ));
        assert!(matches!(
            o.can(
                &actor(Role::Agent, Some("east-s1")),
                Action::ViewAssets,
                &cab("CAB-2")
            ),
            Err(OrgError::ActorPlacement { .. })
        ));
        assert!(matches!(
            o.can(
                &actor(Role::AgentAdmin, None),
                Action::ViewAssets,
                &cab("CAB-2")
            ),
            Err(OrgError::ActorPlacement { .. })
        ));
        assert!(matches!(
            o.can(
                &actor(Role::AgentAdmin, Some("zz")),
                Action::ViewAssets,
                &cab("CAB-2")
            ),
            Err(OrgError::UnknownNode { .. })
        ));
    }

    #[test]
    fn end_users_act_on_their_own() {
        let o = org();
        let me = Actor {
            id: "r1".into(),
            role: Role::EndUser,
            node: None,
        };
        let mine = Resource::Order {
            id: "o1".into(),
            node: "west".into(),
            rider_id: "r1".into(),
        };
        let theirs = Resource::Order {
            id: "o2".into(),
            node: "west".into(),
            rider_id: "r2".into(),
        };
        assert_eq!(o.can(&me, Action::ViewOrders, &mine), Ok(()));
        assert!(matches!(
            o.can(&me, Action::ViewOrders, &theirs),
            Err(OrgError::NotOwner { .. })
        ));
        assert_eq!(o.can(&me, Action::UseServices, &cab("CAB-3")), Ok(()));
        assert!(o.can(&me, Action::ViewAssets, &cab("CAB-3")).is_err());
        assert!(
            o.can(
                &me,
                Action::UseServices,
                &Resource::Node { id: "west".into() }
            )
            .is_err()
        );
        assert_eq!(
            o.can(
                &me,
                Action::ViewRiders,
                &Resource::Rider {
                    id: "r1".into(),
                    node: "hq".into()
                }
            ),
            Ok(())
        );
    }

    #[test]
    fn matrix_shape() {
        // every action is allowed to someone; only end users use services
        for a in Action::ALL {
            assert!(Role::ALL.iter().any(|r| r.allows(a)), "{a:?}");
        }
        for r in Role::ALL {
            assert_eq!(r.allows(Action::UseServices), r == Role::EndUser);
        }
        // money actions are never given to salespeople or system admins
        for a in [
            Action::ApproveRefunds,
            Action::ConfirmSettlements,
            Action::ManageRevenueRules,
        ] {
            for r in [
                Role::SystemAdmin,
                Role::PlatformSales,
                Role::AgentSales,
                Role::AgentAdmin,
            ] {
                assert!(!r.allows(a));
            }
        }
    }

    /// A random valid organisation: one platform, agents, sub-agents under
    /// agents, stores under agents or sub-agents, assets on random nodes.
    fn arb_org() -> impl Strategy<Value = Org> {
        (
            1usize..4,
            prop::collection::vec(any::<prop::sample::Index>(), 0..4),
            prop::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..6),
            prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        )
            .prop_map(|(agents, subs, stores, assets)| {
                let mut nodes = vec![node("hq", NodeKind::Platform, None)];
                let agent_ids: Vec<String> = (0..agents).map(|i| format!("a{i}")).collect();
                for a in &agent_ids {
                    nodes.push(node(a, NodeKind::Agent, Some("hq")));
                }
                let mut sub_ids = Vec::new();
                for (i, ix) in subs.iter().enumerate() {
                    let id = format!("sa{i}");
                    nodes.push(node(
                        &id,
                        NodeKind::SubAgent,
                        Some(ix.get::<String>(&agent_ids)),
                    ));
                    sub_ids.push(id);
                }
                for (i, (under_sub, ix)) in stores.iter().enumerate() {
                    let parent = if *under_sub && !sub_ids.is_empty() {
                        ix.get::<String>(&sub_ids).clone()
                    } else {
                        ix.get::<String>(&agent_ids).clone()
                    };
                    nodes.push(node(&format!("s{i}"), NodeKind::Store, Some(&parent)));
                }
                let ids: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
                let assets = assets
                    .iter()
                    .enumerate()
                    .map(|(i, ix)| {
                        asset(AssetKind::Cabinet, &format!("c{i}"), ix.get::<String>(&ids))
                    })
                    .collect();
                Org::new(OrgSpec { nodes, assets }).unwrap()
            })
    }

    proptest! {
        #[test]
        fn agent_roles_never_act_outside_their_subtree(
            o in arb_org(),
            role in prop::sample::select(vec![Role::Agent, Role::AgentAdmin, Role::AgentSales]),
            actor_ix in any::<prop::sample::Index>(),
            action in prop::sample::select(Action::ALL.to_vec()),
            res_ix in any::<prop::sample::Index>(),
            res_kind in 0u8..6,
        ) {
            let node_ids: Vec<String> = o.nodes().iter().map(|n| n.id.clone()).collect();
            let asset_ids: Vec<String> = o.assets().iter().map(|a| a.id.clone()).collect();
            let me = Actor { id: "u".into(), role, node: Some(actor_ix.get::<String>(&node_ids).clone()) };
            let target = res_ix.get::<String>(&node_ids).clone();
            let resource = match res_kind {
                0 => Resource::Platform,
                1 => Resource::Node { id: target },
                2 if !asset_ids.is_empty() => Resource::Asset { kind: AssetKind::Cabinet, id: res_ix.get::<String>(&asset_ids).clone() },
                3 => Resource::Rider { id: "r".into(), node: target },
                4 => Resource::Order { id: "o".into(), node: target, rider_id: "u".into() },
                _ => Resource::Statement { agent: target },
            };
            if o.can(&me, action, &resource).is_ok() {
                let from = me.node.clone().unwrap();
                let at = o.resource_node(&resource).unwrap();
                prop_assert!(!matches!(resource, Resource::Platform));
                prop_assert!(o.is_within(&at, &from).unwrap(), "{:?} reached {} from {}", role, at, from);
                prop_assert!(o.subtree(&from).unwrap().contains(&at));
                prop_assert!(role.allows(action));
            }
        }

        #[test]
        fn every_asset_has_exactly_one_owner(o in arb_org()) {
            for a in o.assets() {
                prop_assert_eq!(o.owner_of(a.kind, &a.id).unwrap(), a.node.as_str());
                prop_assert!(o.agent_chain(&a.node).unwrap().len() <= 3);
            }
        }
    }
}
