//! Roles and plans: the closed sets of names the SPEC defines.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        kind: stringify!($name),
                        allowed: &[$($text),+],
                    }),
                }
            }
        }
    };
}

/// A name that is not one of the allowed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    pub kind: &'static str,
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {}; expected one of: {}",
            self.kind,
            self.allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownName {}

string_enum!(
    /// A member's role in an organization (SPEC §7.3), strongest first.
    Role { Owner => "owner", Admin => "admin", Member => "member", Viewer => "viewer" }
);

string_enum!(
    /// A user's role on the whole instance.
    PlatformRole { User => "user", Admin => "admin", SuperAdmin => "super_admin" }
);

string_enum!(
    /// An organization's plan; limits per plan are instance configuration.
    Plan { Free => "free", Pro => "pro", Enterprise => "enterprise" }
);

string_enum!(
    /// What an API key may do.
    Scope { Read => "read", Write => "write", Admin => "admin", Agents => "agents", Executions => "executions" }
);

impl Role {
    /// Whether this role is at least as strong as `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() <= other.rank()
    }

    fn rank(self) -> u8 {
        match self {
            Role::Owner => 0,
            Role::Admin => 1,
            Role::Member => 2,
            Role::Viewer => 3,
        }
    }
}

impl PlatformRole {
    /// Platform admins may use the admin routes.
    pub fn is_admin(self) -> bool {
        matches!(self, PlatformRole::Admin | PlatformRole::SuperAdmin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_allowed_ones() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), *role);
        }
        let err = "boss".parse::<Role>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown Role; expected one of: owner, admin, member, viewer"
        );
        assert_eq!(
            serde_json::to_string(&PlatformRole::SuperAdmin).unwrap(),
            "\"super_admin\""
        );
    }

    #[test]
    fn roles_are_ordered_owner_to_viewer() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Admin));
        assert!(!Role::Member.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Member));
    }
}
