//! What a drill's clients did to the simulated group, in order, so that a later process can
//! rebuild the same group: the scenario's history is rebuilt from the scenario (deterministic),
//! then every logged request is run again at its simulated time, without waiting for long
//! work. This is how a resumed drill continues on the group its session changed (issue 13).
//!
//! The log holds statements as the server received them (parameter values included): drill
//! logins only, never a real server's.

use std::sync::{Arc, Mutex, MutexGuard};

use btsdr_types::Param;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

/// One thing that changed (or may have changed) the group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SimEvent {
    /// A request a client sent to one instance.
    Request {
        /// Simulated time when it arrived.
        at: NaiveDateTime,
        /// Index of the instance in the group.
        instance: usize,
        login: String,
        database: String,
        sql: String,
        params: Vec<(String, Option<Param>)>,
        /// The connection was dropped in the middle of its long work (a drill fault): the
        /// work never finished.
        #[serde(default)]
        dropped: bool,
    },
    /// UpdateDatabase.vbs performed (snapshots written before `ManualDone` existed).
    UpdateDatabase { at: NaiveDateTime },
    /// A manual step the trainee confirmed (`Drill::manual_done`): the scenario's remedies
    /// for `step` (`runbook:step`), and UpdateDatabase.vbs when the step runs it.
    ManualDone {
        at: NaiveDateTime,
        step: String,
        #[serde(default)]
        update_database: bool,
    },
}

/// The version of the snapshot format below.
pub const SNAPSHOT_VERSION: u32 = 1;

/// What a later process needs to rebuild a drill's group: its scenario and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub scenario: String,
    pub events: Vec<SimEvent>,
}

/// The log a drill's instances append to (shared by all of them).
#[derive(Debug, Clone, Default)]
pub struct SimLog(Arc<Mutex<Vec<SimEvent>>>);

impl SimLog {
    fn lock(&self) -> MutexGuard<'_, Vec<SimEvent>> {
        btsdr_types::lock(&self.0)
    }

    pub fn push(&self, e: SimEvent) {
        self.lock().push(e);
    }

    pub fn events(&self) -> Vec<SimEvent> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}
