//! Outgoing mail (password-reset links, invitations) over SMTP.

use std::time::Duration;

use cadre_config::{ExposeSecret, SmtpConfig, SmtpSecurity};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{IdentityError, Result};

/// Sends mail through the configured server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for the configuration, or `None` when no host is set.
    pub fn from_config(config: &SmtpConfig) -> Result<Option<Self>> {
        if config.host.is_empty() {
            return Ok(None);
        }
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            IdentityError::Internal(format!("smtp.{what} is invalid: {e}"))
        };
        let mut builder = match config.security {
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)
                .map_err(|e| invalid("host", &e))?,
            SmtpSecurity::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&config.host)
                    .map_err(|e| invalid("host", &e))?
            }
            SmtpSecurity::None => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            }
        }
        .port(config.port)
        .timeout(Some(Duration::from_secs(20)));
        if !config.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                config.username.clone(),
                config.password.expose_secret().to_owned(),
            ));
        }
        let from: Mailbox = config.from.parse().map_err(|e| invalid("from", &e))?;
        Ok(Some(Self {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends a plain-text message.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> Result<()> {
        let to: Mailbox = to
            .parse()
            .map_err(|e| IdentityError::Internal(format!("bad recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| IdentityError::Internal(format!("building the message failed: {e}")))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| {
            IdentityError::Internal(format!(
                "the mail server refused or could not be reached: {e}"
            ))
        })
    }
}
