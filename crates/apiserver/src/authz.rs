//! Authorization: may this user do this? A layer of its own so RBAC and the Node
//! authorizer plug in later (issue "RBAC"); until then every authenticated request is
//! allowed, which is what the API reports (`SelfSubjectAccessReview` answers `allowed`).

use crate::authn::UserInfo;
use crate::request::RequestInfo;

/// The outcome of an authorization check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with the reason upstream would print after "is forbidden: ".
    Deny(String),
}

/// Decides whether a user may make a request.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, request: &RequestInfo) -> Decision;
}

/// Allows every authenticated user everything.
pub struct AllowAuthenticated;

impl Authorizer for AllowAuthenticated {
    fn authorize(&self, _user: &UserInfo, _request: &RequestInfo) -> Decision {
        Decision::Allow
    }
}
