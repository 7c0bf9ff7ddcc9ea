//! RBAC printers: role bindings and cluster role bindings (`ROLE AGE` and, wide, `USERS
//! GROUPS SERVICEACCOUNTS`). Roles and cluster roles have none (the default table).

use serde_json::Value;

use crate::cells::{age, list, name, s};
use crate::describe::{self, AGE, NAME, col, wide};
use crate::{Column, Row};

pub static ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", describe::RB_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

pub static CLUSTER_ROLE_BINDING: &[Column] = &[
    NAME,
    col("Role", "string", describe::CRB_ROLE_REF),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// Both kinds of binding print alike.
pub fn binding(obj: &Value, now: i64) -> Row {
    let role = &obj["roleRef"];
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut service_accounts = Vec::new();
    for subject in list(&obj["subjects"]) {
        let name = s(&subject["name"]);
        match s(&subject["kind"]) {
            "ServiceAccount" => {
                service_accounts.push(format!("{}/{name}", s(&subject["namespace"])))
            }
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            _ => {}
        }
    }
    Row::new(vec![
        name(obj).into(),
        format!("{}/{}", s(&role["kind"]), s(&role["name"])).into(),
        age(obj, now),
        users.join(", ").into(),
        groups.join(", ").into(),
        service_accounts.join(", ").into(),
    ])
}
