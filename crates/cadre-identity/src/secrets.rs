//! Secrets at rest (SPEC §9): AES-256-GCM with a data key per organization,
//! each data key wrapped by the instance's master key.
//!
//! A sealed value reads `cdr1:<key version>:<base64 of nonce and
//! ciphertext>`; the organization's id is authenticated with it, so a value
//! copied into another organization's row does not open. Master keys form a
//! keyring: the primary wraps, earlier ones still unwrap, so a master key can
//! be replaced without downtime — run every instance with the new primary and
//! the old one in `secrets.previous_master_keys`, run
//! `cadre admin rotate-keys`, then drop the old key.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use cadre_store::{OrgKeyRow, Store, StoreError};
use cadre_types::Tenant;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{IdentityError, Result};

const PREFIX: &str = "cdr1";
const NONCE_LEN: usize = 12;

/// One master key and its id (a fingerprint, never the key).
struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
}

impl MasterKey {
    fn new(bytes: &[u8; 32]) -> Result<Self> {
        let digest = Sha256::digest(bytes);
        let id = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        let cipher = Aes256Gcm::new_from_slice(bytes)
            .map_err(|_| IdentityError::Internal("master key must be 32 bytes".into()))?;
        Ok(Self { id, cipher })
    }
}

/// The primary master key and the earlier ones that can still unwrap.
pub struct Keyring {
    primary: MasterKey,
    previous: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary.id)
            .field("previous", &self.previous.len())
            .finish()
    }
}

impl Keyring {
    pub fn new(primary: &[u8; 32], previous: &[[u8; 32]]) -> Result<Self> {
        Ok(Self {
            primary: MasterKey::new(primary)?,
            previous: previous.iter().map(MasterKey::new).collect::<Result<_>>()?,
        })
    }

    /// The fingerprint of the primary key (safe to log).
    pub fn primary_id(&self) -> &str {
        &self.primary.id
    }

    fn by_id(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.primary)
            .chain(&self.previous)
            .find(|k| k.id == id)
    }
}

/// What `rotate` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Data key versions re-wrapped under the primary master key.
    pub rewrapped: usize,
    /// Organizations that got a new data key version.
    pub new_versions: usize,
}

/// Seals and opens secrets of organizations.
#[derive(Debug, Clone)]
pub struct Secrets {
    store: Store,
    keyring: std::sync::Arc<Keyring>,
}

impl Secrets {
    pub fn new(store: Store, keyring: Keyring) -> Self {
        Self {
            store,
            keyring: std::sync::Arc::new(keyring),
        }
    }

    /// Encrypts `plaintext` with the org's newest data key.
    pub async fn seal(&self, tenant: Tenant, plaintext: &[u8]) -> Result<String> {
        let row = match self.store.org_keys().latest_org_key(tenant).await? {
            Some(row) => row,
            None => self.add_version(tenant, 1).await?,
        };
        let data_key = self.unwrap_key(&row)?;
        let sealed = encrypt(&data_key, plaintext, tenant.org_id().as_bytes())?;
        Ok(format!(
            "{PREFIX}:{}:{}",
            row.version,
            base64::engine::general_purpose::STANDARD.encode(sealed)
        ))
    }

    /// Decrypts a value sealed for this org.
    pub async fn open(&self, tenant: Tenant, sealed: &str) -> Result<Vec<u8>> {
        let malformed = || IdentityError::Internal("a sealed secret is malformed".into());
        let mut parts = sealed.splitn(3, ':');
        let (Some(PREFIX), Some(version), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        let version: i64 = version.parse().map_err(|_| malformed())?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| malformed())?;
        let row = self
            .store
            .org_keys()
            .org_key(tenant, version)
            .await?
            .ok_or_else(|| {
                IdentityError::Internal(format!(
                    "data key version {version} of this organization is missing"
                ))
            })?;
        let data_key = self.unwrap_key(&row)?;
        decrypt(&data_key, &bytes, tenant.org_id().as_bytes())
            .map_err(|_| IdentityError::Internal("a sealed secret failed authentication (altered, or sealed for another organization)".into()))
    }

    /// Re-wraps every data key under the primary master key and gives every
    /// organization a new data key version (new secrets use it; old ones
    /// still open with theirs).
    pub async fn rotate(&self) -> Result<Rotation> {
        let mut report = Rotation::default();
        let rows = self.store.org_keys().all_org_keys().await?;
        let mut latest: std::collections::BTreeMap<Uuid, i64> = std::collections::BTreeMap::new();
        for row in &rows {
            latest.insert(
                row.org_id,
                row.version
                    .max(latest.get(&row.org_id).copied().unwrap_or(0)),
            );
            if row.master_key_id != self.keyring.primary.id {
                let data_key = self.unwrap_key(row)?;
                let wrapped = wrap(&self.keyring.primary, &data_key, row.org_id, row.version)?;
                self.store
                    .org_keys()
                    .rewrap_org_key(row.org_id, row.version, &wrapped, &self.keyring.primary.id)
                    .await?;
                report.rewrapped += 1;
            }
        }
        for (org_id, version) in latest {
            #[expect(
                clippy::disallowed_methods,
                reason = "an operator task over every organization's keys"
            )]
            let tenant = Tenant::new(org_id);
            self.add_version(tenant, version + 1).await?;
            report.new_versions += 1;
        }
        Ok(report)
    }

    async fn add_version(&self, tenant: Tenant, version: i64) -> Result<OrgKeyRow> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| IdentityError::Internal(format!("random source failed: {e}")))?;
        let row = OrgKeyRow {
            org_id: tenant.org_id(),
            version,
            wrapped_key: wrap(&self.keyring.primary, &key, tenant.org_id(), version)?,
            master_key_id: self.keyring.primary.id.clone(),
            created_at: cadre_types::time::now(),
        };
        match self.store.org_keys().insert_org_key(tenant, &row).await {
            Ok(()) => Ok(row),
            // Another instance created this version at the same moment: use theirs.
            Err(StoreError::Conflict { .. }) => self
                .store
                .org_keys()
                .org_key(tenant, version)
                .await?
                .ok_or(IdentityError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    fn unwrap_key(&self, row: &OrgKeyRow) -> Result<[u8; 32]> {
        let master = self.keyring.by_id(&row.master_key_id).ok_or_else(|| {
            IdentityError::Internal(format!(
                "data key {} of org {} is wrapped by master key {}, which is not configured; add it to secrets.previous_master_keys",
                row.version, row.org_id, row.master_key_id
            ))
        })?;
        let (nonce, body) = split_nonce(&row.wrapped_key)?;
        let plain = master
            .cipher
            .decrypt(
                &nonce.into(),
                Payload {
                    msg: body,
                    aad: &data_key_aad(row.org_id, row.version).0,
                },
            )
            .map_err(|_| {
                IdentityError::Internal(format!(
                    "data key {} of org {} does not unwrap: altered, or the wrong master key",
                    row.version, row.org_id
                ))
            })?;
        <[u8; 32]>::try_from(plain.as_slice())
            .map_err(|_| IdentityError::Internal("a data key has the wrong length".into()))
    }
}

/// The AAD of a wrapped data key binds it to its org and version.
struct Aad(Vec<u8>);

fn data_key_aad(org_id: Uuid, version: i64) -> Aad {
    let mut aad = org_id.as_bytes().to_vec();
    aad.extend_from_slice(&version.to_be_bytes());
    Aad(aad)
}

fn wrap(master: &MasterKey, data_key: &[u8; 32], org_id: Uuid, version: i64) -> Result<Vec<u8>> {
    seal_with(&master.cipher, data_key, &data_key_aad(org_id, version).0)
}

fn encrypt(key: &[u8; 32], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| IdentityError::Internal("data key must be 32 bytes".into()))?;
    seal_with(&cipher, plaintext, aad)
}

fn seal_with(cipher: &Aes256Gcm, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce)
        .map_err(|e| IdentityError::Internal(format!("random source failed: {e}")))?;
    let body = cipher
        .encrypt(
            &nonce.into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| IdentityError::Internal("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

fn decrypt(key: &[u8; 32], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new_from_slice(key)
        .map_err(|_| IdentityError::Internal("data key must be 32 bytes".into()))?;
    let (nonce, body) = split_nonce(sealed)?;
    cipher
        .decrypt(&nonce.into(), Payload { msg: body, aad })
        .map_err(|_| IdentityError::Internal("decryption failed".into()))
}

fn split_nonce(bytes: &[u8]) -> Result<([u8; NONCE_LEN], &[u8])> {
    if bytes.len() < NONCE_LEN + 16 {
        return Err(IdentityError::Internal("sealed bytes are too short".into()));
    }
    let (nonce, body) = bytes.split_at(NONCE_LEN);
    let nonce = <[u8; NONCE_LEN]>::try_from(nonce)
        .map_err(|_| IdentityError::Internal("bad nonce".into()))?;
    Ok((nonce, body))
}
