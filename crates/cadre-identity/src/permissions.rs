//! The permission matrix of SPEC §7.3, as one table.

use cadre_types::{Role, Scope};

/// Something a caller may be allowed to do inside an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// View the dashboard, tasks, executions, traces, projects.
    View,
    /// Create and edit tasks and projects, run agents, chat.
    EditWork,
    /// Create and edit agents, triggers, knowledge.
    ManageAgents,
    /// Approve or reject agent actions.
    Approve,
    /// Manage integrations and credentials.
    ManageIntegrations,
    /// Manage members, invitations, the org's API keys, its plan and settings;
    /// read the audit log.
    ManageOrg,
    /// Delete the organization.
    DeleteOrg,
}

/// Whether a member with `role` may do `permission` (SPEC §7.3).
pub fn role_allows(role: Role, permission: Permission) -> bool {
    let weakest = match permission {
        Permission::View => Role::Viewer,
        Permission::EditWork
        | Permission::ManageAgents
        | Permission::Approve
        | Permission::ManageIntegrations => Role::Member,
        Permission::ManageOrg => Role::Admin,
        Permission::DeleteOrg => Role::Owner,
    };
    role.at_least(weakest)
}

/// Whether an API key with `scopes` may do `permission`. A key never does
/// more than the member who created it (checked separately).
pub fn scopes_allow(scopes: &[Scope], permission: Permission) -> bool {
    let has = |s: Scope| scopes.contains(&s) || scopes.contains(&Scope::Admin);
    match permission {
        Permission::View => has(Scope::Read) || has(Scope::Write),
        Permission::EditWork => has(Scope::Write) || has(Scope::Executions),
        Permission::ManageAgents => has(Scope::Agents) || has(Scope::Write),
        Permission::Approve | Permission::ManageIntegrations => has(Scope::Write),
        Permission::ManageOrg => has(Scope::Admin),
        // Deleting an organization needs a person.
        Permission::DeleteOrg => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matrix_of_spec_7_3() {
        use Permission::*;
        let rows = [
            (View, [true, true, true, true]),
            (EditWork, [true, true, true, false]),
            (ManageAgents, [true, true, true, false]),
            (Approve, [true, true, true, false]),
            (ManageIntegrations, [true, true, true, false]),
            (ManageOrg, [true, true, false, false]),
            (DeleteOrg, [true, false, false, false]),
        ];
        for (permission, expected) in rows {
            for (role, allowed) in [Role::Owner, Role::Admin, Role::Member, Role::Viewer]
                .into_iter()
                .zip(expected)
            {
                assert_eq!(
                    role_allows(role, permission),
                    allowed,
                    "{role} {permission:?}"
                );
            }
        }
    }

    #[test]
    fn read_scope_only_views_and_no_key_deletes_an_org() {
        assert!(scopes_allow(&[Scope::Read], Permission::View));
        assert!(!scopes_allow(&[Scope::Read], Permission::EditWork));
        assert!(scopes_allow(&[Scope::Write], Permission::EditWork));
        assert!(scopes_allow(&[Scope::Admin], Permission::ManageOrg));
        assert!(!scopes_allow(&[Scope::Admin], Permission::DeleteOrg));
    }
}
