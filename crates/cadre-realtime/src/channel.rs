//! Channels a client subscribes to (`org:ID`, `project:ID`, …) and the scope
//! an event belongs to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One subscribable stream of events, as SPEC §6 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Org(Uuid),
    Project(Uuid),
    Task(Uuid),
    Execution(Uuid),
    Session(Uuid),
    Agent(Uuid),
}

impl Channel {
    /// The kind before the colon (`org`, `project`, …).
    pub fn kind(self) -> &'static str {
        match self {
            Channel::Org(_) => "org",
            Channel::Project(_) => "project",
            Channel::Task(_) => "task",
            Channel::Execution(_) => "execution",
            Channel::Session(_) => "session",
            Channel::Agent(_) => "agent",
        }
    }

    /// The id after the colon.
    pub fn id(self) -> Uuid {
        match self {
            Channel::Org(id)
            | Channel::Project(id)
            | Channel::Task(id)
            | Channel::Execution(id)
            | Channel::Session(id)
            | Channel::Agent(id) => id,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.id())
    }
}

/// Why a channel name was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadChannel(pub String);

impl fmt::Display for BadChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadChannel {}

impl FromStr for Channel {
    type Err = BadChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (kind, id) = s.split_once(':').ok_or_else(|| {
            BadChannel("a channel is KIND:ID, for example project:0190…; KIND is org, project, task, execution, session or agent".into())
        })?;
        let id = Uuid::parse_str(id)
            .map_err(|_| BadChannel(format!("'{id}' is not a valid id (a UUID)")))?;
        Ok(match kind {
            "org" => Channel::Org(id),
            "project" => Channel::Project(id),
            "task" => Channel::Task(id),
            "execution" => Channel::Execution(id),
            "session" => Channel::Session(id),
            "agent" => Channel::Agent(id),
            other => {
                return Err(BadChannel(format!(
                    "unknown channel kind '{other}'; use org, project, task, execution, session or agent"
                )));
            }
        })
    }
}

/// Where an event belongs: its organization and the resources it concerns.
/// An event reaches every channel its scope names (and `org:ID` only when
/// `org_wide`: a trace event or a token chunk would flood an org's stream).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scope {
    pub org: Uuid,
    #[serde(default)]
    pub org_wide: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Uuid>,
}

impl Scope {
    /// An event of the whole organization.
    pub fn org(org: Uuid) -> Self {
        Self {
            org,
            org_wide: true,
            ..Self::default()
        }
    }

    /// An event of one task only (presence): not for the org's stream.
    pub fn task(org: Uuid, task: Uuid) -> Self {
        Self {
            org,
            task: Some(task),
            ..Self::default()
        }
    }

    /// An event of one chat session only.
    pub fn session(org: Uuid, session: Uuid) -> Self {
        Self {
            org,
            session: Some(session),
            ..Self::default()
        }
    }

    /// Every channel the event is delivered on.
    pub fn channels(&self) -> impl Iterator<Item = Channel> + '_ {
        [
            self.org_wide.then_some(Channel::Org(self.org)),
            self.project.map(Channel::Project),
            self.task.map(Channel::Task),
            self.execution.map(Channel::Execution),
            self.agent.map(Channel::Agent),
            self.session.map(Channel::Session),
        ]
        .into_iter()
        .flatten()
    }

    /// Whether the event is delivered on `channel`.
    pub fn reaches(&self, channel: Channel) -> bool {
        self.channels().any(|c| c == channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip_through_their_names() {
        let id = Uuid::now_v7();
        for channel in [
            Channel::Org(id),
            Channel::Project(id),
            Channel::Task(id),
            Channel::Execution(id),
            Channel::Session(id),
            Channel::Agent(id),
        ] {
            assert_eq!(channel.to_string().parse::<Channel>(), Ok(channel));
        }
    }

    #[test]
    fn bad_names_say_what_is_wrong() {
        let id = Uuid::now_v7();
        assert!(format!("{:?}", "org".parse::<Channel>()).contains("KIND:ID"));
        assert!("org:nope".parse::<Channel>().is_err());
        let err = format!("galaxy:{id}").parse::<Channel>().unwrap_err();
        assert!(err.0.contains("galaxy"), "{err}");
    }

    #[test]
    fn a_scope_reaches_the_org_only_when_org_wide() {
        let org = Uuid::now_v7();
        let task = Uuid::now_v7();
        let mut scope = Scope {
            org,
            task: Some(task),
            ..Scope::default()
        };
        assert!(scope.reaches(Channel::Task(task)));
        assert!(!scope.reaches(Channel::Org(org)));
        scope.org_wide = true;
        assert!(scope.reaches(Channel::Org(org)));
        assert!(!scope.reaches(Channel::Project(task)));
    }
}
