//! Organizations and membership: slugs, invitations and their acceptance.

use std::time::Duration;

use cadre_store::{InvitationRow, NewInvitation, NewOrg, OrgRow, Store, StoreError};
use cadre_types::{Plan, Role, Tenant};
use uuid::Uuid;

use crate::keys::{random_token, token_hash};
use crate::{IdentityError, Result};

/// How long an invitation stays valid (SPEC: 7 days).
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Creates an organization owned by `owner`, with its `Inbox`. Without an
/// explicit slug one is derived from the name (with a suffix if taken).
pub async fn create_org(
    store: &Store,
    owner: Uuid,
    name: &str,
    slug: Option<&str>,
    plan: Plan,
) -> Result<OrgRow> {
    let name = crate::accounts::validate_name(name)?;
    let explicit = slug.map(validate_slug).transpose()?;
    let base = explicit.clone().unwrap_or_else(|| slugify(&name));
    for attempt in 0..6 {
        let candidate = match (attempt, &explicit) {
            (0, _) => base.clone(),
            (_, Some(_)) => break,
            (1..=4, None) => format!("{base}-{}", attempt + 1),
            _ => format!(
                "{base}-{}",
                &cadre_types::new_id().simple().to_string()[24..]
            ),
        };
        let new = NewOrg {
            id: cadre_types::new_id(),
            name: name.clone(),
            slug: candidate,
            plan,
            owner,
            inbox_id: cadre_types::new_id(),
            at: cadre_types::time::now(),
        };
        match store.orgs().create_org(&new).await {
            Ok(row) => return Ok(row),
            Err(StoreError::Conflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(IdentityError::Conflict(format!(
        "the slug {base:?} is taken; choose another"
    )))
}

/// Checks a slug: 2–63 characters of `a-z`, `0-9` and inner hyphens.
pub fn validate_slug(raw: &str) -> Result<String> {
    let slug = raw.trim();
    let valid = (2..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-');
    if valid {
        Ok(slug.to_owned())
    } else {
        Err(IdentityError::validation(
            "slug",
            "slug must be 2 to 63 characters of a-z, 0-9 and inner hyphens",
        ))
    }
}

/// A slug from a name: lower-case ASCII letters and digits, runs of anything
/// else become one hyphen.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug: String = slug.trim_end_matches('-').chars().take(48).collect();
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.len() < 2 {
        format!("org-{}", &cadre_types::new_id().simple().to_string()[24..])
    } else {
        slug
    }
}

/// A new invitation and its token (to mail, or to hand to the inviter when
/// no mailer is configured).
pub async fn invite(
    store: &Store,
    tenant: Tenant,
    by: Uuid,
    email: &str,
    role: Role,
) -> Result<(InvitationRow, String)> {
    let email = crate::accounts::normalize_email(email)?;
    let token = random_token("inv_")?;
    let now = cadre_types::time::now();
    let row = store
        .orgs()
        .create_invitation(
            tenant,
            &NewInvitation {
                id: cadre_types::new_id(),
                email,
                role,
                token_hash: token_hash(&token),
                invited_by: by,
                expires_at: now + INVITATION_TTL,
                at: now,
            },
        )
        .await?;
    Ok((row, token))
}

/// Accepts an invitation for the signed-in user, whose email must be the
/// invited one. Returns the org joined.
pub async fn accept_invitation(
    store: &Store,
    token: &str,
    user_id: Uuid,
    user_email: &str,
) -> Result<Uuid> {
    let inv = store
        .orgs()
        .invitation_by_token(&token_hash(token))
        .await?
        .ok_or(IdentityError::NotFound)?;
    if inv.accepted_at.is_some() {
        return Err(IdentityError::Conflict(
            "this invitation has already been accepted".into(),
        ));
    }
    if inv.expires_at <= cadre_types::time::now() {
        return Err(IdentityError::TokenExpired);
    }
    if inv.email != user_email.to_lowercase() {
        return Err(IdentityError::Forbidden(
            "this invitation is for another email address; sign in with that account".into(),
        ));
    }
    store
        .orgs()
        .accept_invitation(inv.id, user_id, cadre_types::time::now())
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => {
                IdentityError::Conflict("this invitation has already been accepted".into())
            }
            other => other.into(),
        })?;
    Ok(inv.org_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_come_from_names() {
        assert_eq!(slugify("Acme Corp."), "acme-corp");
        assert_eq!(slugify("  Über -- Team 42 "), "ber-team-42");
        assert!(slugify("!!").starts_with("org-"));
        assert!(validate_slug("acme-corp").is_ok());
        for bad in ["A", "-acme", "acme-", "ac me", "UPPER"] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }
}
